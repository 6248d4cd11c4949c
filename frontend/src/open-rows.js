/**
 * Open rows: a task's row opened to show its output, log lines and metadata, following them live.
 *
 * Opening a row asks `GET /api/tasks/{id}/output` (its whole output so far and the id of the last
 * event in it), then opens the task's own stream after that id, which feeds both the task and the
 * row's output. A chunk that shows chunks were missed repeats those two steps; so do a `reset` and
 * "Resume". The stream is closed when the row closes, when the row holds all there will be (the
 * task is final and the output reaches its last event), when the task is no longer listed, when
 * the session ends, or when more than `maxLiveOutputs` rows would follow live output (the oldest
 * is paused; "Resume" reopens it).
 *
 * What a row shows lives in the store (`details`); this module keeps only what is under way: each
 * live row's stream, the `/output` request in flight per row, and the gap refetches in a row.
 * Knows neither the DOM nor EventSource (`openStream` comes in), nor the session: `epoch()` tells
 * which session a request belongs to (answers of an ended one are dropped), and a failure goes to
 * `lostSession(error)` first, which returns true when it ended the session.
 */

import { describeError } from "./api.js";
import { streamText } from "./output.js";

/** With the list's stream, 4 rows take 5 of the 6 connections HTTP/1.1 allows an origin. */
export const MAX_LIVE_OUTPUTS = 4;
const COPIED_LIFETIME_MS = 3000;
/** Gap refetches in a row, with no chunk applied between them, before a row stops following. */
const MAX_GAP_RELOADS = 3;

export function createOpenRows({
  api,
  store,
  openStream,
  clipboard = null,
  timers = globalThis,
  maxLiveOutputs = MAX_LIVE_OUTPUTS,
  epoch = () => 0,
  lostSession = () => false,
  fetchTask = () => {}, // the store asked for a task's REST copy
  verifySession = () => {}, // a row's stream gave up on a connection
}) {
  const live = new Map(); // task id -> its own stream, oldest first
  const outputLoads = new Map(); // task id -> the token of its /output request in flight
  const gapReloads = new Map(); // task id -> gap refetches in a row

  function toggleOutput(id) {
    if (store.state.details.has(id)) closeOutput(id);
    else if (store.state.tasks.has(id)) {
      store.openDetail(id);
      loadOutput(id);
    }
  }

  function closeOutput(id) {
    stopOutput(id);
    outputLoads.delete(id);
    gapReloads.delete(id);
    store.closeDetail(id);
  }

  function stopOutput(id) {
    const own = live.get(id);
    if (!own) return;
    live.delete(id);
    own.stop();
  }

  function stopAllOutputs() {
    for (const id of [...live.keys()]) stopOutput(id);
    outputLoads.clear();
    gapReloads.clear();
  }

  /** Streams of rows the store no longer has (a task evicted, or dropped by a reload) close. */
  function dropUnshown() {
    for (const id of [...live.keys()]) if (!store.state.details.has(id)) stopOutput(id);
  }

  /** The row's whole output so far, then its task's stream after it. Also after a gap or a reset. */
  async function loadOutput(id) {
    stopOutput(id);
    const token = {};
    const mine = epoch();
    outputLoads.set(id, token);
    store.setDetail(id, { status: "loading", connection: null, message: "" });
    const stale = () => mine !== epoch() || outputLoads.get(id) !== token || !store.state.details.has(id);
    let answer;
    try {
      answer = await api.getOutput(id);
    } catch (error) {
      if (stale()) return;
      outputLoads.delete(id);
      if (lostSession(error)) return;
      const message = error.status === 404 ? "The server no longer knows this task." : `Couldn't load the output: ${describeError(error)}`;
      store.setDetail(id, { status: "error", message });
      return;
    }
    if (stale()) return;
    outputLoads.delete(id);
    store.loadDetailOutput(id, answer);
    if (settle(id)) return;
    followOutput(id, typeof answer?.last_event_id === "string" ? answer.last_event_id : null);
  }

  function followOutput(id, lastEventId) {
    while (live.size >= maxLiveOutputs) {
      const [oldest] = live.keys();
      stopOutput(oldest);
      store.setDetail(oldest, {
        status: "paused",
        connection: null,
        message: `Live output paused: at most ${maxLiveOutputs} rows follow live output at once.`,
      });
    }
    const own = openStream({
      url: (last) => api.taskEventsUrl(id, last),
      onEvent: (event) => handleTaskEvent(id, own, event),
      onReset: () => live.get(id) === own && loadOutput(id),
      onSnapshot: (data) => handleSnapshot(id, own, data),
      onState: (connection) => live.get(id) === own && store.setDetail(id, { connection }),
      onGiveUp: verifySession,
    });
    live.set(id, own);
    store.setDetail(id, { status: "live", connection: "connecting", message: "" });
    own.start(lastEventId);
  }

  function handleTaskEvent(id, own, event) {
    if (live.get(id) !== own || event?.task_id !== id) return;
    const outcome = store.applyEvent(event);
    if (outcome.fetch) fetchTask(outcome.fetch);
    const status = store.applyDetailEvent(id, event);
    if (status === "gap") {
      outputGap(id);
      return;
    }
    if (status === "applied" && event.output) gapReloads.delete(id);
    settle(id);
  }

  /** Chunks were missed: load the whole output again, unless that keeps failing to help. */
  function outputGap(id) {
    const count = (gapReloads.get(id) ?? 0) + 1;
    gapReloads.set(id, count);
    if (count > MAX_GAP_RELOADS) {
      stopOutput(id);
      gapReloads.delete(id);
      store.setDetail(id, { status: "error", connection: null, message: "The output could not be followed: it kept skipping ahead." });
      return;
    }
    loadOutput(id);
  }

  /** A task's stream whose history was trimmed starts with the task and its output. */
  function handleSnapshot(id, own, data) {
    if (live.get(id) !== own) return;
    if (data.task) store.upsertTask(data.task);
    if (data.output) store.loadDetailOutput(id, data.output);
    settle(id);
  }

  /** Closes the row's stream once it holds everything; true when it does. */
  function settle(id) {
    if (!store.detailComplete(id)) return false;
    stopOutput(id);
    gapReloads.delete(id);
    if (store.state.details.get(id)?.status !== "complete") store.setDetail(id, { status: "complete", connection: null, message: "" });
    return true;
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
    /** The row's "Output" toggle: opens the row and loads its output, or closes it. */
    toggle: toggleOutput,
    /** "Resume" (a paused row) or "Try again" (a failed one): loads the output afresh and follows on. */
    resume: (id) => store.state.details.has(id) && loadOutput(id),
    /** "Copy" on one of the row's streams: its whole text to the clipboard, and "Copied" for a while. */
    copy: copyOutput,
    /** The list's stream applied `event`: it may be a live row's final one, or have evicted a task. */
    listEvent(event) {
      if (live.has(event?.task_id)) settle(event.task_id); // the list may bring the final event last
      dropUnshown();
    },
    /** After the list was reloaded: the rows of tasks it dropped stop following. */
    dropUnshown,
    /** The session ended or the page is going: every row's stream closes, loads in flight are dropped. */
    stopAll: stopAllOutputs,
  };
}
