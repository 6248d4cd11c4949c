/**
 * Trying again after a failure: the backoff that the streams, the watches and the page's loads
 * share, and a load that retries itself until it succeeds.
 */

/** Exponential backoff with jitter: each wait is drawn between half and all of the cap. */
export function backoffDelay(attempt, { initialMs, maxMs }, random = Math.random) {
  const cap = Math.min(maxMs, initialMs * 2 ** attempt);
  return Math.round(cap / 2 + (random() * cap) / 2);
}

/**
 * Returns `retrying(spec)`, which builds one load retried with backoff until it succeeds.
 * `run()` makes the request now (cancelling a pending retry) and hands the answer to `apply`. A
 * failure goes to `handle`, which returns true when no retry is wanted (the session was lost, say);
 * otherwise `report(error, waitMs)` tells the user, and after the wait `again` runs (`run` unless
 * given). A request begun under an earlier `epoch()` is stale: its answer or failure is dropped.
 */
export function createRetrying({ timers, backoff, random = Math.random, epoch = () => 0 }) {
  return function retrying({ request, apply, report, handle = () => false, again }) {
    let timer = null;
    let attempt = 0;
    const cancel = () => {
      if (timer !== null) timers.clearTimeout(timer);
      timer = null;
    };
    async function run() {
      cancel();
      const mine = epoch();
      let answer;
      try {
        answer = await request();
      } catch (error) {
        if (mine !== epoch() || handle(error)) return;
        const wait = backoffDelay(attempt++, backoff, random);
        report(error, wait);
        timer = timers.setTimeout(again ?? run, wait);
        return;
      }
      if (mine !== epoch()) return;
      attempt = 0;
      await apply(answer);
    }
    return {
      run,
      cancel,
      /** Cancels a pending retry and starts the backoff afresh. */
      reset() {
        cancel();
        attempt = 0;
      },
    };
  };
}
