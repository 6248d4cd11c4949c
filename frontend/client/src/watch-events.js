/**
 * Every event, as it happens: `client.watchEvents({ types, kind, tag, task, lastEventId, ... })`.
 *
 * The filters go in the stream's address (`/api/events?types=&kind=&tag=&task=`), and so does
 * the resume id: `lastEventId` first, then the id of the last event seen, which is what a
 * `reset` or a reconnect resumes from. Events come raw, as the server sends them, to `onEvent`;
 * a `reset` (the server could not resume there: refetch what you show over REST) to `onReset`.
 *
 * With a token it goes in the address as `?access_token=`. A token function is asked before the
 * first connection, and again after each connection the stream gave up on: an EventSource cannot
 * see whether a 401 was the reason, and a fresh token costs little next to a stream that retries
 * with a dead one.
 */

import { createRetrying } from "./retry.js";
import { createStream } from "./stream.js";

const noop = () => {};

export function createEventsWatch(
  env,
  { types, kind, tag, task, lastEventId = null, onEvent = noop, onReset = noop, onState = noop, onGiveUp = noop, signal = null } = {},
) {
  const { api, tokens } = env;
  const filters = { types, kind, tag, task };
  let ended = false;
  let generation = 0; // moved on by stop(): a token that comes after it opens nothing
  const live = (handler) => (value) => {
    if (!ended) handler(value);
  };
  const stream = createStream({
    url: (last) => api.eventsUrl({ ...filters, lastEventId: last }, tokens?.current() ?? null),
    EventSource: env.EventSource,
    withCredentials: api.withCredentials,
    timers: env.timers,
    random: env.random,
    backoff: env.backoff,
    openTimeoutMs: env.openTimeoutMs,
    connectivity: env.connectivity,
    isOnline: env.isOnline,
    onEvent: live(onEvent),
    onReset: live(onReset),
    onState: live(onState),
    onGiveUp: () => live(onGiveUp)(),
    beforeReconnect: tokens?.refreshable ? () => tokens.refresh(tokens.current()) : null,
  });
  let first = null;

  function stop() {
    if (ended) return;
    ended = true;
    generation += 1;
    first?.cancel();
    stream.stop();
    signal?.removeEventListener("abort", stop);
  }

  if (signal?.aborted) {
    ended = true;
  } else if (tokens && tokens.current() === null) {
    // The first address needs the token: ask for it (again, after a backoff, should that fail).
    signal?.addEventListener("abort", stop, { once: true });
    onState("connecting");
    const retrying = createRetrying({ timers: env.timers, backoff: env.backoff, random: env.random, epoch: () => generation });
    first = retrying({
      request: () => tokens.get(),
      apply: () => stream.start(lastEventId),
      report: () => live(onState)("reconnecting"),
    });
    first.run();
  } else {
    signal?.addEventListener("abort", stop, { once: true });
    stream.start(lastEventId);
  }

  return {
    stop,
    /** The id of the last event (or reset) seen: where a new watch would resume. */
    get lastEventId() {
      return stream.lastEventId ?? lastEventId;
    },
  };
}
