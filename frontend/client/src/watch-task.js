/**
 * One task followed to its end: `client.watchTask(id, handlers)`.
 *
 * 1. Sync: `GET /api/tasks/{id}/output` (every stream so far, and `last_event_id`, the task's
 *    last event when it was read), then `GET /api/tasks/{id}` unless the task held is at least
 *    as new (a copy given as `task`, say). Output and task are one read on the server, so the
 *    task read after it is never older.
 * 2. Follow: the task's own stream, resumed after the output's `last_event_id`, brings exactly
 *    the rest. An event is folded into the task when its seq is the next one (not above the
 *    task's: a repeat, dropped; further on: events were missed, back to 1). It is applied to the
 *    output by its chunk's offset, or once by its id (a log line, a new attempt's reset), apart
 *    from the seq: a task read after the output counts events whose chunks the output still lacks.
 * 3. A `reset` goes back to 1, and the task read then replaces the one held even if it is older
 *    (the log went back: a Redis failover lost its newest writes, and their seqs come again); a
 *    `snapshot` replaces task and output, as a sync does. Gaps that three syncs in a row do not
 *    mend (nothing applied between them) end the watch.
 * 4. Failures worth another try (the network, a timeout, 408, 429, 5xx, a token function that
 *    failed) are retried with backoff and told to `onRetry`. Any other ends the watch
 *    (`onError`): 401 (a token refused even after a fresh one, or with no way to get one), 403,
 *    404, a bad answer.
 * 5. When the stream gives up on a connection, the task is read once over REST before the next
 *    one: an EventSource cannot see a 401 or a 404, a fetch can, and a refused token is
 *    refreshed there (the REST layer asks the token function), so the next address carries it.
 * 6. It ends once: `onEnd` when the task is final and the output reaches its final event (no
 *    stream is opened for a task that is already there), `onError`, or `stop()`/the signal's
 *    abort, after which nothing is called back and no timer or EventSource is left.
 */

import { ApiError } from "./api.js";
import { applyEventToOutput, applyEventToTask, FINAL_STATES, normalizeTask, RULES, ruleFor } from "./event-types.js";
import { createTaskOutput, isAfter, loadOutput, MAX_LOG_LINES, streamText } from "./output.js";
import { createRetrying } from "./retry.js";
import { createStream } from "./stream.js";

/** Syncs after gaps, in a row and with nothing applied between them, before the watch gives up. */
export const MAX_GAP_SYNCS = 3;
const noop = () => {};

/**
 * `env` is what the client was made with: `{ api, tokens, EventSource, timers, random, backoff,
 * openTimeoutMs, connectivity, isOnline }`.
 */
export function createTaskWatch(
  env,
  id,
  {
    task: known = null,
    output: held = null,
    maxLogLines = MAX_LOG_LINES,
    onEvent = noop,
    onProgress = noop,
    onOutput = noop,
    onLog = noop,
    onSnapshot = noop,
    onState = noop,
    onRetry = noop,
    onEnd = noop,
    onError = noop,
    signal = null,
  } = {},
) {
  const { api, tokens } = env;
  let task = isTask(known) && known.id === id ? normalizeTask(known) : null;
  const output = held ?? createTaskOutput();
  let stream = null;
  let everLive = false;
  let gapSyncs = 0;
  // Set by a `reset`: the next sync takes the task as it is read, whatever its seq (3.).
  let rewound = false;
  let ended = false;
  let generation = 0;
  let settle;
  const done = new Promise((resolve, reject) => (settle = { resolve, reject }));
  done.catch(noop); // a watch nobody awaits must not report an unhandled rejection

  const emit = (handler, ...args) => {
    if (!ended) handler(...args);
  };
  const retrying = createRetrying({ timers: env.timers, backoff: env.backoff, random: env.random, epoch: () => generation });
  const sync = retrying({
    request: read,
    apply: synced,
    handle(error) {
      if (ended) return true;
      if (!worthRetrying(error)) fail(error);
      return ended;
    },
    report(error, waitMs) {
      emit(onState, everLive ? "reconnecting" : "connecting");
      emit(onRetry, error, waitMs);
    },
  });

  /** The output, then the task if the one held may be older. */
  async function read() {
    const rebase = rewound;
    const answer = await api.getOutput(id);
    const fresh = !task || rebase || isAfter(answer?.last_event_id, task.last_event_id) ? await api.getTask(id) : null;
    return { answer, fresh, rebase };
  }

  function synced({ answer, fresh, rebase }) {
    if (ended) return;
    if (isTask(fresh) && (!task || rebase || fresh.seq >= task.seq)) task = normalizeTask(fresh);
    if (rebase) rewound = false;
    if (!task) {
      fail(badAnswer("the task"));
      return;
    }
    loadOutput(output, answer);
    emit(onSnapshot, task, output);
    if (ended || finishIfComplete()) return;
    follow(typeof answer?.last_event_id === "string" ? answer.last_event_id : task.last_event_id);
  }

  function resync() {
    closeStream();
    emit(onState, everLive ? "reconnecting" : "connecting");
    sync.run();
  }

  function gap() {
    gapSyncs += 1;
    if (gapSyncs > MAX_GAP_SYNCS) {
      fail(
        new ApiError(0, {
          type: "out_of_step",
          title: "Out of step",
          status: 0,
          detail: "The output could not be followed: it kept skipping ahead.",
        }),
      );
      return;
    }
    resync();
  }

  function follow(resumeEventId) {
    const mine = createStream({
      url: (lastEventId) => api.taskEventsUrl(id, { lastEventId }, tokens?.current() ?? null),
      EventSource: env.EventSource,
      withCredentials: api.withCredentials,
      timers: env.timers,
      random: env.random,
      backoff: env.backoff,
      openTimeoutMs: env.openTimeoutMs,
      connectivity: env.connectivity,
      isOnline: env.isOnline,
      onEvent: (event) => stream === mine && handleEvent(event),
      onReset: () => {
        if (stream !== mine) return;
        rewound = true;
        resync();
      },
      onSnapshot: (data) => stream === mine && handleSnapshot(data),
      onState: (state) => stream === mine && handleState(state),
      beforeReconnect: () => stream === mine && probe(),
    });
    stream = mine;
    mine.start(resumeEventId);
  }

  function handleState(state) {
    if (state === "live") everLive = true;
    emit(onState, state === "connecting" && everLive ? "reconnecting" : state);
  }

  /** Before a new connection: can this watch still read the task? A refused token is refreshed. */
  async function probe() {
    const asking = stream;
    try {
      await api.getTask(id);
    } catch (error) {
      if (stream === asking && !worthRetrying(error)) fail(error);
    }
  }

  function handleEvent(event) {
    if (ended || event?.task_id !== id || !Number.isInteger(event.seq)) return;
    const rule = RULES.get(event.type);
    if (!rule) return;
    const counted = event.seq <= task.seq; // the task has it already; the output may not
    if (!counted && event.seq > task.seq + 1) return gap();
    if (!counted && !ruleFor(task, event.type)) return; // one the log would have refused
    const applied = applyEventToOutput(output, event, { maxLogs: maxLogLines });
    if (applied.status === "gap") return gap();
    const { chunk = null, cleared = [], line = null } = applied;
    if (!counted) task = applyEventToTask(task, event);
    if (!counted || chunk) gapSyncs = 0;
    if (!counted) {
      emit(onEvent, event, task);
      if (event.progress && typeof event.progress === "object") emit(onProgress, event.progress, task);
    }
    for (const name of cleared) emit(onOutput, name, "", null, task);
    if (chunk) emit(onOutput, chunk.stream, streamText(output.streams.get(chunk.stream)), chunk, task);
    if (line) emit(onLog, line, task);
    if (!ended) finishIfComplete();
  }

  /** `{task, output}`, sent first by a task's stream whose history was trimmed. */
  function handleSnapshot(data) {
    if (ended) return;
    if (isTask(data?.task) && data.task.id === id && data.task.seq >= task.seq) task = normalizeTask(data.task);
    if (data?.output && typeof data.output === "object") loadOutput(output, data.output);
    gapSyncs = 0;
    emit(onSnapshot, task, output);
    if (!ended) finishIfComplete();
  }

  /** The task is final and the output reaches its final event: there is nothing more to come. */
  function finishIfComplete() {
    if (!task || !FINAL_STATES.has(task.state) || !output.lastEventId) return false;
    if (task.last_event_id && isAfter(task.last_event_id, output.lastEventId)) return false;
    settle.resolve(task); // first: a handler that calls stop() changes nothing
    emit(onState, "closed");
    emit(onEnd, task);
    end();
    return true;
  }

  function fail(error) {
    settle.reject(error);
    emit(onState, "closed");
    emit(onError, error);
    end();
  }

  function stop() {
    if (ended) return;
    end();
    settle.reject(signal?.aborted ? signal.reason : abortError());
  }

  function end() {
    ended = true;
    generation += 1;
    sync.cancel();
    closeStream();
    signal?.removeEventListener("abort", stop);
  }

  function closeStream() {
    const closing = stream;
    stream = null;
    closing?.stop();
  }

  if (signal?.aborted) {
    ended = true;
    settle.reject(signal.reason ?? abortError());
  } else {
    signal?.addEventListener("abort", stop, { once: true });
    emit(onState, "connecting");
    sync.run();
  }

  return {
    /** The task as applied so far (the copy given, or null before the first answer). */
    get task() {
      return task;
    },
    /** Its output as applied so far: `{ streams: Map, logs, lastEventId }`. */
    output,
    /** The final task; rejects with the error that ended the watch, or an AbortError on stop. */
    done,
    stop,
  };
}

/** Worth another try: the network, a timeout, a failing token function, 408, 429, a 5xx. */
export function worthRetrying(error) {
  if (!(error instanceof ApiError)) return false;
  const { status } = error;
  return status === 0 || status === 408 || status === 429 || status >= 500;
}

function isTask(task) {
  return Boolean(task) && typeof task === "object" && typeof task.id === "string" && Number.isInteger(task.seq);
}

function badAnswer(what) {
  return new ApiError(200, { type: "bad_response", title: "Unexpected response", status: 200, detail: `The API's answer was not ${what}.` });
}

function abortError() {
  return typeof DOMException === "function" ? new DOMException("The watch was stopped.", "AbortError") : Object.assign(new Error("The watch was stopped."), { name: "AbortError" });
}
