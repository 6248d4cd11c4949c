/**
 * Turns what happens (page load, form input, clicks, stream events, network failures) into API
 * calls and store changes. Knows neither the DOM nor EventSource: both come in as collaborators,
 * so the whole flow can be driven by tests.
 *
 * Load order: kinds and tasks are fetched in parallel; the stream opens once the task snapshot is
 * in, resuming after it, so no event between the fetch and the stream is missed. A failed load is
 * retried with backoff (and at once when the browser comes back online); the UI says so meanwhile.
 */

import { fieldsFromSchema, serverErrorsToFields, validate, validateField } from "./schema-form.js";
import { backoffDelay } from "./stream.js";
import { shortId } from "./format.js";
import { FORM_FOCUS } from "./store.js";

const NOTE_LIFETIME_MS = 8000;
const TICK_MS = 1000;

export function createController({
  api,
  store,
  openStream,
  timers = globalThis,
  random = Math.random,
  newKey = defaultKey,
  taskCap = 500,
  retryBackoff = { initialMs: 2000, maxMs: 30000 },
}) {
  const pendingKeys = new Map();
  let stream = null;
  let tasksTimer = null;
  let tasksAttempt = 0;
  let kindsTimer = null;
  let kindsAttempt = 0;
  let loadingTasks = false;
  let reloadAgain = false;
  let ticker = null;

  const fieldsOf = (kind) => store.state.kinds.find((k) => k.name === kind)?.fields ?? [];

  async function loadKinds() {
    clear(kindsTimer);
    kindsTimer = null;
    store.setKindsStatus("loading");
    try {
      const kinds = await api.listKinds();
      store.setKinds((Array.isArray(kinds) ? kinds : []).map((kind) => ({ ...kind, fields: fieldsFromSchema(kind.params_schema) })));
      kindsAttempt = 0;
    } catch (error) {
      store.setKindsStatus("error", describe(error));
      kindsTimer = timers.setTimeout(loadKinds, backoffDelay(kindsAttempt++, retryBackoff, random));
    }
  }

  /** First load and every resync: one load at a time; a reset during a load queues one more. */
  async function loadTasks({ resync }) {
    if (loadingTasks) {
      reloadAgain = true;
      return;
    }
    clear(tasksTimer);
    tasksTimer = null;
    loadingTasks = true;
    if (resync) store.beginResync();
    else store.setTasksStatus("loading");
    try {
      const { items, resumeEventId } = await api.listRecentTasks({ cap: taskCap });
      store.loadSnapshot(items);
      tasksAttempt = 0;
      if (!stream) startStream(resumeEventId);
    } catch (error) {
      const wait = backoffDelay(tasksAttempt++, retryBackoff, random);
      store.setTasksStatus("error", `Couldn't load tasks: ${describe(error)} Trying again in ${Math.ceil(wait / 1000)} s.`);
      tasksTimer = timers.setTimeout(() => loadTasks({ resync: Boolean(stream) }), wait);
    } finally {
      loadingTasks = false;
    }
    if (reloadAgain) {
      reloadAgain = false;
      await loadTasks({ resync: true });
    }
  }

  function startStream(resumeEventId) {
    stream = openStream({
      onEvent: handleEvent,
      onReset: handleReset,
      onState: handleConnection,
    });
    stream.start(resumeEventId);
    ticker = timers.setInterval(() => store.tick(), TICK_MS);
  }

  function handleEvent(event) {
    const outcome = store.applyEvent(event);
    if (outcome.fetch) fetchTask(outcome.fetch);
  }

  function handleReset(data) {
    const reason = typeof data?.reason === "string" && data.reason ? ` (${data.reason})` : "";
    store.addNote(`The event stream was reset${reason}; reloading tasks.`);
    loadTasks({ resync: true });
  }

  let lastConnection = null;
  function handleConnection(connection) {
    store.setConnection(connection);
    // The indicator (a status region) announces changes; the log keeps a quiet record.
    if (connection === "live" && lastConnection && lastConnection !== "connecting") {
      store.addNote("Connection restored.", { announce: false });
    } else if ((connection === "reconnecting" || connection === "offline") && lastConnection === "live") {
      store.addNote(connection === "offline" ? "Network lost; waiting to reconnect." : "Connection lost; reconnecting.", {
        tone: "warn",
        announce: false,
      });
    }
    lastConnection = connection;
  }

  async function fetchTask(id) {
    try {
      store.upsertTask(await api.getTask(id));
    } catch (error) {
      store.fetchFailed(id);
      if (error.status !== 404) store.addNote(`Couldn't load task ${shortId(id)}: ${describe(error)}`, { tone: "error" });
    }
  }

  async function submit(kind, raw) {
    const fields = fieldsOf(kind);
    if (store.state.forms.get(kind)?.submitting) return;
    const { values, errors } = validate(fields, raw);
    const invalid = fields.find((field) => errors[field.name]);
    if (invalid) {
      store.setForm(kind, { errors, formErrors: [], focus: invalid.name });
      return;
    }
    const idempotencyKey = keyFor(kind, values);
    store.setForm(kind, { submitting: true, errors: {}, formErrors: [], message: "" });
    try {
      const task = await api.createTask(kind, values, { idempotencyKey });
      pendingKeys.delete(kind);
      store.upsertTask(task);
      store.setForm(kind, { submitting: false, message: `Started task ${shortId(task.id)}.` });
    } catch (error) {
      if (error.status === 422) {
        pendingKeys.delete(kind);
        const mapped = serverErrorsToFields(fields, error.fieldErrors);
        const formErrors = mapped.formErrors.length || Object.keys(mapped.errors).length ? mapped.formErrors : [describe(error)];
        const first = fields.find((field) => mapped.errors[field.name]);
        store.setForm(kind, { submitting: false, errors: mapped.errors, formErrors, focus: formErrors.length ? FORM_FOCUS : first.name });
      } else {
        // The same key is sent if the user retries the same values: the server may have
        // accepted the first attempt before the answer was lost.
        store.setForm(kind, { submitting: false, formErrors: [`Couldn't start the task: ${describe(error)}`], focus: FORM_FOCUS });
      }
    }
  }

  function keyFor(kind, values) {
    const payload = JSON.stringify(values);
    const pending = pendingKeys.get(kind);
    if (pending && pending.payload === payload) return pending.key;
    const key = newKey();
    pendingKeys.set(kind, { payload, key });
    return key;
  }

  /** Live validation: a message appears when a field is left, and clears as soon as it is fixed. */
  function edit(kind, name, raw, { commit }) {
    const field = fieldsOf(kind).find((f) => f.name === name);
    if (!field) return;
    const errors = store.state.forms.get(kind)?.errors ?? {};
    const current = errors[name];
    const message = validateField(field, raw).error;
    if (message && (commit || current) && message !== current) {
      store.setForm(kind, { errors: { ...errors, [name]: message } });
    } else if (!message && current) {
      const rest = { ...errors };
      delete rest[name];
      store.setForm(kind, { errors: rest });
    }
  }

  async function cancel(id) {
    const task = store.state.tasks.get(id);
    if (!task || task.cancel_requested || store.state.taskUi.get(id)?.cancelling) return;
    store.setTaskUi(id, { cancelling: true, note: "" });
    let note = "";
    try {
      store.upsertTask(await api.cancelTask(id));
    } catch (error) {
      if (error.status === 409) {
        note = "Already finished: nothing to cancel.";
        fetchTask(id);
      } else if (error.status === 404) {
        note = "The server no longer knows this task.";
      } else {
        note = `Couldn't cancel: ${describe(error)}`;
      }
    }
    store.setTaskUi(id, { cancelling: false, note });
    if (note) {
      timers.setTimeout(() => {
        if (store.state.taskUi.get(id)?.note === note) store.setTaskUi(id, { note: "" });
      }, NOTE_LIFETIME_MS);
    }
  }

  function clear(timer) {
    if (timer !== null) timers.clearTimeout(timer);
  }

  return {
    start() {
      loadKinds();
      return loadTasks({ resync: false });
    },
    stop() {
      stream?.stop();
      clear(tasksTimer);
      clear(kindsTimer);
      if (ticker !== null) timers.clearInterval(ticker);
    },
    /** The browser is back online: retry failed loads now rather than at the end of a backoff. */
    online() {
      if (store.state.tasksStatus.phase === "error") loadTasks({ resync: Boolean(stream) });
      if (store.state.kindsStatus.phase === "error") loadKinds();
    },
    handlers: {
      submit,
      edit,
      cancel,
      filter: (value) => store.setFilter(value),
      clearLog: () => store.clearLog(),
      retryKinds: () => loadKinds(),
      retryTasks: () => loadTasks({ resync: Boolean(stream) }),
    },
  };
}

function describe(error) {
  const problem = error?.problem;
  const text = problem?.detail || problem?.title || error?.message || "Something went wrong.";
  return /[.!?]$/.test(text) ? text : `${text}.`;
}

function defaultKey() {
  if (globalThis.crypto?.randomUUID) return globalThis.crypto.randomUUID();
  return `${Date.now().toString(16)}-${Math.random().toString(16).slice(2)}`;
}
