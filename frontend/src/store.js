/**
 * Application state, and the only place it changes. No DOM.
 *
 * Tasks are keyed by id and ordered newest first by comparing ids as strings (they are
 * time-ordered hex of one length). Each task keeps the `seq` of the last event applied to it, and
 * an event is applied only if its seq is higher: replays after a reconnect, a REST reload racing
 * the stream, and the answer of a POST all converge on the same state, each change shown once.
 * What an event does to a task comes from the event table and its fold, in the client, as on the
 * server.
 *
 * Every change marks what it touched (a task id in `dirty`, or an aspect such as "order" or
 * "log"); `flush()` hands the marks to the view and clears them, so a frame repaints only that.
 *
 * `session` says whether the API needs a key and who is signed in; it holds no secret. `reset()`
 * forgets every task, kind, form and log line, so nothing seen in one session outlives it.
 *
 * `details` holds, for each task whose row is open, what only an open row shows: its output
 * streams and log lines and how its watch fares. The output object is the row's watch's (the
 * client applies the task's stream to it); `touchDetail` marks the row when the watch changed it.
 * A task's metadata and output summary are fields of the task itself, folded like any other.
 */

import { ACTIVE_STATES, applyEventToTask, createTaskOutput, FINAL_STATES, normalizeTask, OUTPUT_LOG_STATES, OUTPUT_LOG_TYPES, RULES } from "../client/src/index.js";

export const FILTERS = ["all", "active", "finished"];
/** The `focus` of a form's state that means its form-level error rather than a field. */
export const FORM_FOCUS = "__form";
const TIMED_STATES = new Set(["running", "retrying"]);
const MAX_BUFFERED_PER_TASK = 200;
/** Event types shown in the open row, not in the updates log: a task may write very many. */
export const QUIET_TYPES = new Set([...OUTPUT_LOG_TYPES, "metadata"]);

/**
 * `phase`: "checking" (not yet known), "open" (the API needs no key), "signed-out" (a sign-in is
 * needed) or "signed-in". `pending`: "sign-in" or "sign-out" while that request runs. `error`: why
 * the last sign-in failed; `note`: why the sign-in panel is back. Setting `focus` ("key" or "app")
 * bumps focusToken so the view moves focus exactly once.
 */
function initialSession() {
  return { phase: "checking", required: false, principal: null, pending: null, error: "", note: "", focus: null, focusToken: 0 };
}

/** What a session sees, as it is before anything has loaded; `reset()` goes back to it. */
function initialState() {
  return {
    kinds: [],
    kindsStatus: { phase: "loading", message: "" },
    tasks: new Map(),
    order: [],
    tasksStatus: { phase: "loading", message: "" },
    log: [],
    connection: "connecting",
    forms: new Map(),
    taskUi: new Map(),
    details: new Map(),
    clockSkewMs: 0,
  };
}

/**
 * An open row's state: `output` (streams, log lines, the event id it reaches: its watch's),
 * `status` ("loading", "live", "paused", "complete" or "error"), `connection` (of its watch while
 * live), `message` (why paused or failed) and `copied` (`{stream, ok}` after a Copy).
 */
function initialDetail() {
  return { output: createTaskOutput(), status: "loading", connection: null, message: "", copied: null };
}

export function createStore({ maxLog = 200, maxTasks = 1000 } = {}) {
  const state = { ...initialState(), filter: "all", tag: "", tagError: "", session: initialSession() };
  let dirty = new Set();
  let aspects = new Set();
  let logKey = 0;
  let skewSamples = 0;
  let resyncTouched = null;
  const fetching = new Set();
  const buffered = new Map();
  const listeners = new Set();

  function changed(aspect, taskId) {
    if (taskId !== undefined) dirty.add(taskId);
    if (aspect) aspects.add(aspect);
    for (const listener of listeners) listener();
  }

  function put(task) {
    const isNew = !state.tasks.has(task.id);
    state.tasks.set(task.id, task);
    if (isNew) {
      state.order.splice(insertionIndex(state.order, task.id), 0, task.id);
      evictOverflow();
    }
    changed(isNew ? "order" : "tasks", task.id);
  }

  function remove(id) {
    state.tasks.delete(id);
    state.taskUi.delete(id);
    state.details.delete(id);
    const index = state.order.indexOf(id);
    if (index >= 0) state.order.splice(index, 1);
  }

  /** Past maxTasks, the oldest finished tasks go first; active ones are never dropped. */
  function evictOverflow() {
    for (let i = state.order.length - 1; i >= 0 && state.tasks.size > maxTasks; i -= 1) {
      const id = state.order[i];
      if (FINAL_STATES.has(state.tasks.get(id).state)) remove(id);
    }
  }

  function appendLog(entry) {
    logKey += 1;
    state.log.push({ ...entry, key: logKey });
    if (state.log.length > maxLog) state.log.splice(0, state.log.length - maxLog);
    changed("log");
  }

  function logEvent(event) {
    if (QUIET_TYPES.has(event.type)) return;
    appendLog({
      source: "event",
      at: event.at,
      type: event.type,
      taskId: event.task_id,
      kind: event.kind,
      attempt: event.attempt,
      progress: event.progress ?? null,
      result: event.result ?? null,
      error: event.error ?? null,
      retryAt: event.retry_at ?? null,
      announce: event.type !== "progress",
    });
  }

  function observeServerTime(at, receivedAt) {
    const sent = Date.parse(at);
    if (Number.isNaN(sent)) return;
    // Delivery only ever adds delay, so the smallest (received - sent) seen is the best estimate
    // of how far this clock runs ahead of the server's; replays after a reconnect cannot lower it.
    const sample = receivedAt - sent;
    if (skewSamples === 0 || sample < state.clockSkewMs) state.clockSkewMs = sample;
    skewSamples += 1;
  }

  function requestFetch(id) {
    if (fetching.has(id)) return undefined;
    fetching.add(id);
    return id;
  }

  function drainBuffered(id) {
    const events = buffered.get(id);
    buffered.delete(id);
    if (!events) return;
    for (const event of events) {
      const task = state.tasks.get(id);
      const next = applyEventToTask(task, event);
      if (next !== task) put(next);
    }
  }

  /** Keeps an event until the task's REST copy is in, and asks for that copy once. */
  function hold(event) {
    const events = buffered.get(event.task_id) ?? [];
    if (events.some((e) => e.seq === event.seq)) return { status: "duplicate" };
    if (events.length < MAX_BUFFERED_PER_TASK) {
      events.push(event);
      events.sort((a, b) => a.seq - b.seq);
      buffered.set(event.task_id, events);
    }
    logEvent(event);
    return { status: "buffered", fetch: requestFetch(event.task_id) };
  }

  const store = {
    state,

    subscribe(listener) {
      listeners.add(listener);
      return () => listeners.delete(listener);
    },

    /** Marks collected since the last flush: `{ state, dirty: Set<taskId>, aspects: Set<string> }`. */
    flush() {
      const marks = { state, dirty, aspects };
      dirty = new Set();
      aspects = new Set();
      return marks;
    },

    setKinds(kinds) {
      state.kinds = Array.isArray(kinds) ? kinds.filter((kind) => kind && typeof kind.name === "string") : [];
      state.kindsStatus = { phase: "ready", message: "" };
      changed("kinds");
    },

    setKindsStatus(phase, message = "") {
      state.kindsStatus = { phase, message };
      changed("kinds");
    },

    setTasksStatus(phase, message = "") {
      state.tasksStatus = { phase, message };
      changed("status");
    },

    setSession(patch) {
      const current = state.session;
      const next = { ...current, ...patch };
      if ("focus" in patch && patch.focus) next.focusToken = current.focusToken + 1;
      state.session = next;
      changed("session");
    },

    /** Forgets what the last session saw: tasks, kinds, forms, the log. The session and filter stay. */
    reset() {
      Object.assign(state, initialState()); // logKey keeps counting: the view tells new lines by a higher key
      skewSamples = 0;
      resyncTouched = null;
      fetching.clear();
      buffered.clear();
      dirty = new Set();
      for (const aspect of ["kinds", "forms", "status", "log", "connection"]) aspects.add(aspect);
      changed("order");
    },

    setConnection(connection) {
      if (state.connection === connection) return;
      state.connection = connection;
      changed("connection");
    },

    setFilter(filter) {
      if (!FILTERS.includes(filter) || filter === state.filter) return;
      state.filter = filter;
      changed("filter");
    },

    /** The list's tag ("" for every task): the list and its stream are asked for that tag only. */
    setTag(tag) {
      if (typeof tag !== "string" || tag === state.tag) return;
      state.tag = tag;
      aspects.add("tag");
      changed("filter");
    },

    /** Why the tag typed into the filter was not taken ("" when it was). */
    setTagError(message) {
      if (message === state.tagError) return;
      state.tagError = message;
      changed("tag");
    },

    /**
     * Applies one stream event. Returns `{ status, fetch? }`: status is "applied", "duplicate",
     * "buffered" (kept until the task's REST copy is in: the task is unknown, or events were
     * missed that this one follows) or "ignored" (malformed, of an unknown type, or one the task's
     * state does not allow, which the log would have refused); `fetch` is a task id the caller
     * should load over REST, requested once until it completes.
     */
    applyEvent(event, receivedAt = Date.now()) {
      if (!isEvent(event) || !RULES.has(event.type)) return { status: "ignored" };
      observeServerTime(event.at, receivedAt);
      resyncTouched?.add(event.task_id);
      const task = state.tasks.get(event.task_id);
      if (!task) {
        const created = applyEventToTask(undefined, event);
        if (!created) return hold(event);
        put(created);
        logEvent(event);
        return { status: "applied" };
      }
      if (event.seq <= task.seq) return { status: "duplicate" };
      const gap = event.seq > task.seq + 1;
      const next = applyEventToTask(task, event);
      if (next === task) return gap ? hold(event) : { status: "ignored" };
      put(next);
      logEvent(event);
      if (!gap) return { status: "applied" };
      // The list's stream leaves out output chunks and log lines, which keep a running task
      // running: a gap between two events of a running task is what they leave, and only the
      // output summary they write is missed. A fresh copy brings it once the task leaves that
      // state (final, say); any other gap may have missed more (started_at), fetched at once.
      if (OUTPUT_LOG_STATES.has(task.state) && OUTPUT_LOG_STATES.has(next.state)) return { status: "applied" };
      return { status: "applied", fetch: requestFetch(event.task_id) };
    },

    /** A task from REST (list, GET, POST or cancel answer); applied only if not older than ours. */
    upsertTask(task) {
      if (!isTask(task)) return false;
      fetching.delete(task.id);
      const current = state.tasks.get(task.id);
      const newer = !current || task.seq > current.seq;
      // A cancel request on a running task changes no seq: only its flag moves forward.
      const cancelNoted = current && task.seq === current.seq && task.cancel_requested && !current.cancel_requested;
      if (newer || cancelNoted) put(normalizeTask(task));
      drainBuffered(task.id);
      return newer || Boolean(cancelNoted);
    },

    /** The REST fetch asked for by applyEvent failed: forget its buffered events. */
    fetchFailed(id) {
      fetching.delete(id);
      buffered.delete(id);
    },

    /**
     * Called before a resync's REST reload: tasks touched by live events meanwhile are kept.
     * `phase` "loading" when the list is asked for other tasks (a new tag), not resynchronised.
     */
    beginResync(phase = "syncing") {
      resyncTouched = new Set();
      store.setTasksStatus(phase);
    },

    /**
     * Merges a REST snapshot. After a resync, tasks that the snapshot no longer lists are dropped
     * unless a live event touched them while it loaded (created after it was taken, say).
     */
    loadSnapshot(items) {
      const listed = new Set();
      for (const task of items) {
        if (!isTask(task)) continue;
        listed.add(task.id);
        store.upsertTask(task);
      }
      if (resyncTouched) {
        for (const id of [...state.order]) {
          if (!listed.has(id) && !resyncTouched.has(id)) remove(id);
        }
        changed("order");
      }
      resyncTouched = null;
      store.setTasksStatus("ready");
    },

    addNote(message, { tone = "info", announce = true } = {}) {
      appendLog({ source: "note", at: new Date().toISOString(), message, tone, announce });
    },

    clearLog() {
      state.log = [];
      changed("log");
    },

    /** Per-task interface state: `{ cancelling, note }`. */
    setTaskUi(id, patch) {
      if (!state.tasks.has(id)) return;
      state.taskUi.set(id, { ...(state.taskUi.get(id) ?? {}), ...patch });
      changed(undefined, id);
    },

    /**
     * Per-form state: `{ submitting, errors: {field: message}, formErrors: [], message, focus,
     * focusToken }`; `message` is a short note such as which task the last submit started.
     * Setting `focus` (a field name) bumps focusToken so the view moves focus exactly once.
     */
    setForm(kind, patch) {
      const current = state.forms.get(kind) ?? { submitting: false, errors: {}, formErrors: [], message: "", focus: null, focusToken: 0 };
      const next = { ...current, ...patch };
      if ("focus" in patch && patch.focus) next.focusToken = current.focusToken + 1;
      state.forms.set(kind, next);
      changed("forms");
    },

    /** Marks the tasks that show a running clock (elapsed time, retry countdown) for repaint. */
    tick() {
      let any = false;
      for (const [id, task] of state.tasks) {
        if (TIMED_STATES.has(task.state)) {
          dirty.add(id);
          any = true;
        }
      }
      if (any) changed();
    },

    isFetching: (id) => fetching.has(id),

    /** Opens a task's row: its details start empty, loading. */
    openDetail(id) {
      if (!state.tasks.has(id) || state.details.has(id)) return;
      state.details.set(id, initialDetail());
      changed("details", id);
    },

    /** Closes a task's row and forgets the output it held. */
    closeDetail(id) {
      if (state.details.delete(id)) changed("details", id);
    },

    /** `{ status, connection, message, copied }` of an open row. */
    setDetail(id, patch) {
      const detail = state.details.get(id);
      if (!detail) return;
      state.details.set(id, { ...detail, ...patch });
      changed("details", id);
    },

    /** The row's watch changed its output (a chunk, a log line, a sync): repaint the row. */
    touchDetail(id) {
      if (state.details.has(id)) changed("details", id);
    },
  };
  return store;
}

/** Keeps the newest-first order: ids compare as strings. */
function insertionIndex(order, id) {
  let low = 0;
  let high = order.length;
  while (low < high) {
    const mid = (low + high) >> 1;
    if (order[mid] > id) low = mid + 1;
    else high = mid;
  }
  return low;
}

function isEvent(event) {
  return Boolean(event) && typeof event.task_id === "string" && Number.isInteger(event.seq) && typeof event.type === "string";
}

function isTask(task) {
  return Boolean(task) && typeof task.id === "string" && Number.isInteger(task.seq);
}

/** Whether `task` shows under the state filter and, when one is set, the tag. */
export function matchesFilter(filter, task, tag = "") {
  if (tag && !(Array.isArray(task.tags) && task.tags.includes(tag))) return false;
  if (filter === "active") return ACTIVE_STATES.has(task.state);
  if (filter === "finished") return FINAL_STATES.has(task.state);
  return true;
}
