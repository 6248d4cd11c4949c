/**
 * Turns what happens (page load, form input, clicks, stream events, network failures) into API
 * calls and store changes. Knows neither the DOM nor EventSource: the client (`client/`) comes
 * in as a collaborator, so the whole flow can be driven by tests.
 *
 * Load order: the session comes first (`GET /api/session`). When the API needs a key and this
 * browser has no session, the sign-in panel is shown and nothing else is asked for; otherwise (or
 * once signed in) kinds and tasks are fetched in parallel, and the stream opens once the task
 * snapshot is in, resuming after it, so no event between the fetch and the stream is missed. A
 * failed load (session, kinds or tasks) is retried with backoff (and at once when the browser
 * comes back online); the UI says so meanwhile.
 *
 * Sessions: the API key goes straight from the sign-in handler to `client.signIn` and is kept
 * nowhere (the browser keeps an HttpOnly cookie instead). Signing out, or any 401 later on (the
 * session expired), stops the stream, forgets every task and shows the sign-in panel again. Each
 * session has an epoch: answers to requests of an earlier session are dropped, not applied.
 *
 * Tag filter: the list is fetched with `?tag=` and its stream opened with `?tag=`; a new tag
 * stops the stream, reloads the list (dropping the tasks it no longer names) and opens the stream
 * again. The list's stream keeps its default types: no output chunks, no log lines.
 *
 * The list's stream is the client's `watchEvents`; open rows (`open-rows.js`) each follow their
 * task with the client's `watchTask`. The controller hands the rows the view's row actions, and
 * stops them when the list drops their task or the session ends. They share the session's epoch,
 * its 401 handling and the task fetch.
 */

import { fieldsFromSchema, serverErrorsToFields, validate, validateField } from "./schema-form.js";
import { createRetrying, describeError as describe } from "../client/src/index.js";
import { shortId } from "../client/src/format.js";
import { FORM_FOCUS } from "./store.js";
import { checkTag, parseTags, TAGS_FIELD } from "./tags.js";
import { createOpenRows, MAX_LIVE_OUTPUTS } from "./open-rows.js";

const NOTE_LIFETIME_MS = 8000;
const TICK_MS = 1000;
export const SESSION_ENDED_NOTE = "Your session has ended; sign in again.";
export const SIGNED_OUT_NOTE = "You have signed out.";

export function createController({
  client,
  store,
  clipboard = null,
  timers = globalThis,
  random = Math.random,
  newKey = defaultKey,
  taskCap = 500,
  maxLiveOutputs = MAX_LIVE_OUTPUTS, // open rows following live output at once
  retryBackoff = { initialMs: 2000, maxMs: 30000 },
}) {
  const pendingKeys = new Map();
  let stream = null;
  let loadingTasks = false;
  let reloadAgain = false;
  let ticker = null;
  let verifying = false;
  let epoch = 0; // bumped when a session ends: answers to its requests are then dropped

  const fieldsOf = (kind) => store.state.kinds.find((k) => k.name === kind)?.fields ?? [];
  const current = (mine) => mine === epoch;
  const loaded = () => ["open", "signed-in"].includes(store.state.session.phase);

  const retrying = createRetrying({ timers, backoff: retryBackoff, random, epoch: () => epoch });
  const openRows = createOpenRows({
    client,
    store,
    clipboard,
    timers,
    maxLiveOutputs,
    epoch: () => epoch,
    lostSession,
    fetchTask,
  });
  const retryNote = (wait) => `Trying again in ${Math.ceil(wait / 1000)} s.`;

  /** Does the API need a key, and is this browser signed in? Then sign in, or load. */
  const sessionLoad = retrying({
    request: () =>
      client.getSession().catch((error) => {
        if (error.status === 404) return { auth_required: false, principal: null }; // an API without sessions needs no key
        throw error;
      }),
    async apply(session) {
      if (!session?.auth_required) {
        store.setSession({ phase: "open", required: false, principal: null });
        await load();
      } else if (typeof session.principal === "string" && session.principal) {
        store.setSession({ phase: "signed-in", required: true, principal: session.principal });
        await load();
      } else {
        showSignIn("");
      }
    },
    handle(error) {
      if (error.status !== 401) return false;
      showSignIn(""); // a front that guards even this path
      return true;
    },
    report: (error, wait) => store.setTasksStatus("error", `Couldn't reach the server: ${describe(error)} ${retryNote(wait)}`),
  });
  const checkSession = () => sessionLoad.run();

  const kindsLoad = retrying({
    request: () => client.listKinds(),
    apply(kinds) {
      store.setKinds((Array.isArray(kinds) ? kinds : []).map((kind) => ({ ...kind, fields: fieldsFromSchema(kind.params_schema) })));
    },
    handle: lostSession,
    report: (error) => store.setKindsStatus("error", describe(error)),
    again: loadKinds,
  });

  const tasksLoad = retrying({
    request: () => client.listRecentTasks({ cap: taskCap, tag: store.state.tag || undefined }),
    apply({ items, resumeEventId }) {
      store.loadSnapshot(items);
      openRows.dropUnshown();
      if (!stream) startStream(resumeEventId);
    },
    handle: lostSession,
    report: (error, wait) => store.setTasksStatus("error", `Couldn't load tasks: ${describe(error)} ${retryNote(wait)}`),
    again: () => loadTasks({ resync: Boolean(stream) }),
  });
  const loads = [sessionLoad, kindsLoad, tasksLoad];

  function load() {
    loadKinds();
    return loadTasks({ resync: false });
  }

  function showSignIn(note) {
    store.setSession({ phase: "signed-out", required: true, principal: null, pending: null, error: "", note, focus: "key" });
  }

  /** Trades the key for a session cookie, makes sure the browser kept it, then loads. */
  async function signIn(apiKey) {
    const { phase, pending } = store.state.session;
    if (phase !== "signed-out" || pending) return;
    const key = typeof apiKey === "string" ? apiKey.trim() : "";
    if (!key) {
      store.setSession({ error: "Enter your API key.", focus: "key" });
      return;
    }
    const mine = epoch;
    store.setSession({ pending: "sign-in", error: "", note: "" });
    const failed = (error) => {
      if (current(mine)) store.setSession({ pending: null, error, focus: "key" });
    };
    try {
      await client.signIn(key);
    } catch (error) {
      failed(signInError(error));
      return;
    }
    let session;
    try {
      session = await client.getSession(); // the cookie is HttpOnly: only the API can say it is there
    } catch (error) {
      failed(`Couldn't confirm the sign-in: ${describe(error)}`);
      return;
    }
    if (!current(mine)) return;
    if (session?.auth_required && !session.principal) {
      failed(
        "The key was accepted, but this browser did not keep the session cookie. Open this page on the same site as the API (the same host name).",
      );
      return;
    }
    const required = session?.auth_required !== false;
    store.setSession({
      phase: required ? "signed-in" : "open",
      required,
      principal: required ? session.principal : null,
      pending: null,
      error: "",
      note: "",
      focus: "app",
    });
    await load();
  }

  async function signOut() {
    const { phase, pending } = store.state.session;
    if (phase !== "signed-in" || pending) return;
    const mine = epoch;
    store.setSession({ pending: "sign-out" });
    try {
      await client.signOut();
    } catch (error) {
      if (!current(mine)) return;
      store.setSession({ pending: null });
      store.addNote(`Couldn't sign out: ${describe(error)}`, { tone: "error" });
      return;
    }
    if (!current(mine)) return;
    endSession();
    showSignIn(SIGNED_OUT_NOTE);
  }

  /** Stops what the session started and forgets what it showed. */
  function endSession() {
    epoch += 1;
    stopListStream();
    openRows.stopAll();
    for (const each of loads) each.reset();
    loadingTasks = reloadAgain = false;
    pendingKeys.clear();
    store.reset();
  }

  /** A 401 from any call but the sign-in: the session ended (or the API now wants a key). */
  function lostSession(error) {
    if (error?.status !== 401) return false;
    if (store.state.session.phase !== "signed-out") sessionEnded();
    return true;
  }

  function sessionEnded() {
    const { phase } = store.state.session;
    endSession();
    showSignIn(phase === "signed-in" ? SESSION_ENDED_NOTE : "The server now asks for an API key; sign in.");
  }

  /**
   * The list's stream gave up on a connection. An EventSource cannot see a 401, so ask the API
   * whether the session still holds; if it does not, end it rather than retry forever. (A row's
   * watch finds out by itself: it reads its task before reconnecting, and a 401 ends it.)
   */
  async function verifySession() {
    if (verifying) return;
    verifying = true;
    const mine = epoch;
    try {
      const session = await client.getSession();
      if (current(mine) && loaded() && session?.auth_required && !session.principal) sessionEnded();
    } catch {
      // Unreachable or failing: the stream keeps retrying, and its next give-up asks again.
    } finally {
      verifying = false;
    }
  }

  function loadKinds() {
    store.setKindsStatus("loading");
    return kindsLoad.run();
  }

  /** First load and every resync: one load at a time; a reset during a load queues one more. */
  async function loadTasks({ resync, phase = "syncing" }) {
    if (loadingTasks) {
      reloadAgain = true;
      return;
    }
    const mine = epoch;
    loadingTasks = true;
    if (resync) store.beginResync(phase);
    else store.setTasksStatus("loading");
    try {
      await tasksLoad.run();
    } finally {
      if (current(mine)) loadingTasks = false; // an ended session's flags were reset already
    }
    if (!current(mine)) return;
    if (reloadAgain) {
      reloadAgain = false;
      await loadTasks({ resync: true });
    }
  }

  function startStream(resumeEventId) {
    const tag = store.state.tag;
    // No types: the server's default leaves out output chunks and log lines.
    stream = client.watchEvents({
      tag: tag || undefined,
      lastEventId: resumeEventId,
      onEvent: handleEvent,
      onReset: handleReset,
      onState: handleConnection,
      onGiveUp: verifySession,
    });
    if (ticker === null) ticker = timers.setInterval(() => store.tick(), TICK_MS);
  }

  function stopListStream() {
    stream?.stop();
    stream = null;
    if (ticker !== null) timers.clearInterval(ticker);
    ticker = null;
  }

  function handleEvent(event) {
    const outcome = store.applyEvent(event);
    if (outcome.fetch) fetchTask(outcome.fetch);
    openRows.dropUnshown(); // the event may have evicted a task with an open row
  }

  /** The list's tag filter: a valid tag (or "" for every task) reloads the list and its stream. */
  function filterTag(text) {
    const tag = typeof text === "string" ? text.trim() : "";
    const error = tag ? checkTag(tag) : "";
    store.setTagError(error);
    if (error || tag === store.state.tag) return;
    store.setTag(tag);
    if (!loaded()) return; // the first load will ask for it
    stopListStream();
    loadTasks({ resync: true, phase: "loading" });
  }

  function handleReset(data) {
    const reason = typeof data?.reason === "string" && data.reason ? ` (${data.reason})` : "";
    store.addNote(`The event stream was reset${reason}; reloading tasks.`);
    loadTasks({ resync: true });
  }

  function handleConnection(connection) {
    const previous = store.state.connection;
    if (connection === previous) return;
    store.setConnection(connection);
    // The indicator (a status region) announces changes; the log keeps a quiet record.
    if (connection === "live" && previous !== "connecting") {
      store.addNote("Connection restored.", { announce: false });
    } else if ((connection === "reconnecting" || connection === "offline") && previous === "live") {
      store.addNote(connection === "offline" ? "Network lost; waiting to reconnect." : "Connection lost; reconnecting.", {
        tone: "warn",
        announce: false,
      });
    }
  }

  async function fetchTask(id) {
    const mine = epoch;
    try {
      const task = await client.getTask(id);
      if (current(mine)) store.upsertTask(task);
    } catch (error) {
      if (!current(mine) || lostSession(error)) return;
      store.fetchFailed(id);
      if (error.status !== 404) store.addNote(`Couldn't load task ${shortId(id)}: ${describe(error)}`, { tone: "error" });
    }
  }

  async function submit(kind, raw) {
    const fields = fieldsOf(kind);
    if (store.state.forms.get(kind)?.submitting) return;
    const { values, errors } = validate(fields, raw);
    const { tags, error: tagsError } = parseTags(raw?.[TAGS_FIELD]);
    if (tagsError) errors[TAGS_FIELD] = tagsError;
    const invalid = fields.find((field) => errors[field.name])?.name ?? (tagsError ? TAGS_FIELD : null);
    if (invalid) {
      store.setForm(kind, { errors, formErrors: [], focus: invalid });
      return;
    }
    const idempotencyKey = keyFor(kind, tags.length ? { params: values, tags } : values);
    const mine = epoch;
    store.setForm(kind, { submitting: true, errors: {}, formErrors: [], message: "" });
    try {
      const task = await client.submit(kind, values, { idempotencyKey, tags });
      if (!current(mine)) return;
      pendingKeys.delete(kind);
      store.upsertTask(task);
      store.setForm(kind, { submitting: false, message: `Started task ${shortId(task.id)}.` });
    } catch (error) {
      if (!current(mine) || lostSession(error)) return;
      if (error.status === 422) {
        pendingKeys.delete(kind);
        const isTags = (entry) => typeof entry?.field === "string" && /^tags(\.|$)/.test(entry.field);
        const mapped = serverErrorsToFields(fields, error.fieldErrors.filter((entry) => !isTags(entry)));
        const tagMessages = error.fieldErrors.filter(isTags).map((entry) => entry.message || "Invalid tags.");
        if (tagMessages.length) mapped.errors[TAGS_FIELD] = tagMessages.join(" ");
        const formErrors = mapped.formErrors.length || Object.keys(mapped.errors).length ? mapped.formErrors : [describe(error)];
        const first = fields.find((field) => mapped.errors[field.name])?.name ?? TAGS_FIELD;
        store.setForm(kind, { submitting: false, errors: mapped.errors, formErrors, focus: formErrors.length ? FORM_FOCUS : first });
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
    if (!field && name !== TAGS_FIELD) return;
    const errors = store.state.forms.get(kind)?.errors ?? {};
    const current = errors[name];
    const message = field ? validateField(field, raw).error : parseTags(raw).error || undefined;
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
    const mine = epoch;
    store.setTaskUi(id, { cancelling: true, note: "" });
    let note = "";
    try {
      const answer = await client.cancel(id);
      if (!current(mine)) return;
      store.upsertTask(answer);
    } catch (error) {
      if (!current(mine) || lostSession(error)) return;
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

  /** "Try now" on the notice: the session check if it failed, else the task list. */
  function retryLoad() {
    if (store.state.session.phase === "checking") return checkSession();
    if (loaded()) return loadTasks({ resync: Boolean(stream) });
    return undefined;
  }

  return {
    /** Checks the session, then loads (or shows the sign-in); resolves once the first load is in. */
    start: () => checkSession(),
    stop() {
      stopListStream();
      openRows.stopAll();
      for (const each of loads) each.cancel();
    },
    /** The browser is back online: retry failed loads now rather than at the end of a backoff. */
    online() {
      if (store.state.tasksStatus.phase === "error") retryLoad();
      if (loaded() && store.state.kindsStatus.phase === "error") loadKinds();
    },
    handlers: {
      submit,
      edit,
      cancel,
      signIn,
      signOut,
      filter: (value) => store.setFilter(value),
      filterTag,
      toggleOutput: openRows.toggle,
      resumeOutput: openRows.resume,
      copyOutput: openRows.copy,
      clearLog: () => store.clearLog(),
      retryKinds: () => loaded() && loadKinds(),
      retryTasks: retryLoad,
    },
  };
}

function signInError(error) {
  if (error?.status === 401) return capitalize(describe(error)); // "The API key is not valid."
  if (error?.status === 422) return "That is not an API key: a key has 1 to 256 characters.";
  return `Couldn't sign in: ${describe(error)}`;
}

function capitalize(text) {
  return text.charAt(0).toUpperCase() + text.slice(1);
}

function defaultKey() {
  if (globalThis.crypto?.randomUUID) return globalThis.crypto.randomUUID();
  return `${Date.now().toString(16)}-${Math.random().toString(16).slice(2)}`;
}
