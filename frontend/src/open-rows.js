/**
 * Open rows: a task's row opened to show its output, log lines and metadata, following them live.
 *
 * Each open row that follows live output has one watch (`client.watchTask`): it loads the
 * output, follows the task's own stream after it, refetches after a gap or a `reset`, and ends
 * when the row holds all there will be. The row's watch is stopped when the row closes, when the
 * task is no longer listed, when the session ends, or when more than `maxLiveOutputs` rows would
 * follow live output (the oldest is paused; "Resume" starts a new watch on what it holds).
 *
 * What a row shows lives in the store (`details`; its `output` is the watch's); this module keeps
 * only each live row's watch. Knows neither the DOM nor EventSource, nor the session: `epoch()`
 * tells which session a watch belongs to (what it reports after that one ended is dropped), and
 * a failure goes to `lostSession(error)` first, which returns true when it ended the session.
 */

import { describeError, FINAL_STATES, streamText } from "../client/src/index.js";

/** With the list's stream, 4 rows take 5 of the 6 connections HTTP/1.1 allows an origin. */
export const MAX_LIVE_OUTPUTS = 4;
const COPIED_LIFETIME_MS = 3000;

export function createOpenRows({
  client,
  store,
  clipboard = null,
  timers = globalThis,
  maxLiveOutputs = MAX_LIVE_OUTPUTS,
  epoch = () => 0,
  lostSession = () => false,
  fetchTask = () => {}, // the store asked for a task's REST copy
}) {
  const live = new Map(); // task id -> its watch, oldest first

  function toggleOutput(id) {
    if (store.state.details.has(id)) closeOutput(id);
    else if (store.state.tasks.has(id)) {
      store.openDetail(id);
      watch(id);
    }
  }

  function closeOutput(id) {
    stopWatch(id);
    store.closeDetail(id);
  }

  function stopWatch(id) {
    const own = live.get(id);
    if (!own) return;
    live.delete(id);
    own.stop();
  }

  function stopAll() {
    for (const id of [...live.keys()]) stopWatch(id);
  }

  /** Watches of rows the store no longer has (a task evicted, or dropped by a reload) stop. */
  function dropUnshown() {
    for (const id of [...live.keys()]) if (!store.state.details.has(id)) stopWatch(id);
  }

  /** A task already final settles on its output's answer: it follows nothing and pauses no row. */
  function makeRoom(id) {
    if (FINAL_STATES.has(store.state.tasks.get(id)?.state)) return;
    while (live.size >= maxLiveOutputs) {
      const [oldest] = live.keys();
      stopWatch(oldest);
      store.setDetail(oldest, {
        status: "paused",
        connection: null,
        message: `Live output paused: at most ${maxLiveOutputs} rows follow live output at once.`,
      });
    }
  }

  /** The row's output loaded, then followed to its end. Also "Resume" and "Try again". */
  function watch(id) {
    stopWatch(id);
    makeRoom(id);
    const mine = epoch();
    store.setDetail(id, { status: "loading", connection: null, message: "" });
    let own = null;
    const current = () => {
      if (own === null || live.get(id) !== own) return false;
      if (mine === epoch()) return true;
      stopWatch(id); // a watch of a session that ended
      return false;
    };
    const settled = () => live.get(id) === own && live.delete(id);
    const detail = () => store.state.details.get(id);
    own = client.watchTask(id, {
      task: store.state.tasks.get(id),
      output: detail().output, // what the row shows grows in place when it resumes
      onSnapshot(task) {
        if (!current()) return;
        store.upsertTask(task);
        if (detail().status === "loading" || detail().status === "error") store.setDetail(id, { status: "live", connection: "connecting", message: "" });
        else store.touchDetail(id);
      },
      onEvent(event) {
        if (!current()) return;
        const outcome = store.applyEvent(event);
        if (outcome.fetch) fetchTask(outcome.fetch);
        store.touchDetail(id);
      },
      onState(connection) {
        if (current() && detail().status === "live") store.setDetail(id, { connection });
      },
      onRetry(error, waitMs) {
        if (!current() || lostSession(error)) return;
        if (detail().status !== "live") {
          const again = `Trying again in ${Math.ceil(waitMs / 1000)} s.`;
          store.setDetail(id, { status: "error", message: `Couldn't load the output: ${describeError(error)} ${again}` });
        }
      },
      onEnd() {
        if (!current()) return;
        settled();
        store.setDetail(id, { status: "complete", connection: null, message: "" });
      },
      onError(error) {
        if (!current()) return;
        settled();
        if (lostSession(error)) return;
        store.setDetail(id, { status: "error", connection: null, message: failure(error) });
      },
    });
    live.set(id, own);
  }

  async function copyOutput(id, name) {
    const stream = store.state.details.get(id)?.output.streams.get(name);
    if (!stream || !clipboard) return;
    let ok = false;
    try {
      ok = (await clipboard.copy(streamText(stream))) === true;
    } catch {
      ok = false;
    }
    const copied = { stream: name, ok };
    store.setDetail(id, { copied });
    timers.setTimeout(() => {
      if (store.state.details.get(id)?.copied === copied) store.setDetail(id, { copied: null });
    }, COPIED_LIFETIME_MS);
  }

  return {
    /** The row's "Output" toggle: opens the row and watches its task, or closes it. */
    toggle: toggleOutput,
    /** "Resume" (a paused row) or "Try again" (a failed one): a new watch, from what the row holds. */
    resume: (id) => store.state.details.has(id) && watch(id),
    /** "Copy" on one of the row's streams: its whole text to the clipboard, and "Copied" for a while. */
    copy: copyOutput,
    /** After the list changed (an event evicted a task, a reload dropped some): their rows stop. */
    dropUnshown,
    /** The session ended or the page is going: every row's watch stops. */
    stopAll,
  };
}

function failure(error) {
  if (error?.status === 404) return "The server no longer knows this task.";
  if (error?.code === "out_of_step") return describeError(error);
  return `Couldn't load the output: ${describeError(error)}`;
}
