/**
 * The only module that touches the document.
 *
 * `requestRender()` may be called for every store change; it paints at most once per animation
 * frame, and a paint only visits what the store marked: rows are keyed by task id and patched in
 * place (so focus on a Cancel button survives progress ticks), new log lines are added, and the
 * list is reordered only when tasks were added or removed. `bind(handlers)` turns DOM events into
 * handler calls with plain values.
 *
 * While a sign-in is needed the sign-in panel replaces the app. The API key is read from its
 * input only on submit, handed to the handler and cleared from the input at once.
 *
 * An open row's output is painted append-only: each stream's box remembers the stream object it
 * painted and how much of it, and a frame adds only the text (a text-node append) or items that
 * arrived since; a stream is painted afresh only when the store replaced it (a new attempt). A
 * box follows the end of its stream while the reader is at the end, and stays put once they
 * scroll up. Log lines are appended likewise and trimmed from the top.
 */

import {
  CONNECTION_LABELS,
  createKindForm,
  createLogLine,
  createOutputItem,
  createOutputLogLine,
  createOutputStream,
  createTaskDetail,
  createTaskRow,
  detailStatusView,
  metadataEntries,
  taskView,
  updateOutputStreamHead,
  updateTaskRow,
} from "./templates.js";
import { ACTIVE_STATES, FINAL_STATES } from "../client/src/index.js";
import { FORM_FOCUS, matchesFilter } from "./store.js";
import { appendText, h, setAttr, setFlag, setText, showText } from "./dom.js";

/** How close to its end (px) a scrolled box counts as at the end, still following. */
const FOLLOW_SLACK_PX = 24;
const MAX_TAG_OPTIONS = 100;

export function createView({ document: doc, window: win, readState, now = () => Date.now() }) {
  const $ = (id) => doc.getElementById(id);
  const el = {
    connection: $("connection"),
    connectionText: $("connection-text"),
    notice: $("notice"),
    noticeText: $("notice-text"),
    kinds: $("kinds"),
    tasks: $("tasks"),
    summary: $("task-summary"),
    status: $("tasks-status"),
    empty: $("tasks-empty"),
    filter: $("filter"),
    tagForm: $("tag-filter"),
    tagInput: $("tag-filter-input"),
    tagError: $("tag-filter-error"),
    tagOptions: $("tag-options"),
    log: $("log"),
    app: $("app"),
    skipLink: $("skip-link"),
    formsHeading: $("forms-heading"),
    account: $("account"),
    principal: $("principal"),
    signOut: $("sign-out"),
    signin: $("signin"),
    signinForm: $("signin-form"),
    signinNote: $("signin-note"),
    apiKey: $("api-key"),
    apiKeyError: $("api-key-error"),
    signinSubmit: $("signin-submit"),
  };
  const rows = new Map();
  const forms = new Map();
  let handlers = {};
  let frame = null;
  let lastLogKey = 0;
  let kindTitles = new Map();
  let sessionFocusToken = 0;
  let tagOptionsKey = "";

  function requestRender() {
    if (frame !== null) return;
    const schedule = win.requestAnimationFrame ? win.requestAnimationFrame.bind(win) : (fn) => win.setTimeout(fn, 16);
    frame = schedule(() => {
      frame = null;
      render(readState());
    });
  }

  /** Paints the marks of one flush: `{ state, dirty, aspects }`. */
  function render({ state, dirty, aspects }) {
    const at = now();
    if (aspects.has("kinds")) kindTitles = new Map(state.kinds.map((kind) => [kind.name, kind.title || kind.name]));
    if (aspects.has("log")) renderLog(state);
    if (aspects.has("kinds")) renderKinds(state);
    if (aspects.has("forms") || aspects.has("kinds")) renderForms(state);
    const everyRow = aspects.has("kinds") || aspects.has("filter");
    const painted = aspects.has("order") || everyRow ? renderOrder(state, at, everyRow) : new Set();
    for (const id of dirty) {
      const row = rows.get(id);
      const task = state.tasks.get(id);
      if (row && task && !painted.has(id)) paintRow(row, task, state, at);
    }
    if (dirty.size || aspects.has("order") || aspects.has("filter") || aspects.has("status")) renderSummary(state);
    if (aspects.has("tag") || aspects.has("filter")) renderTag(state);
    if (aspects.has("order")) renderTagOptions(state);
    if (aspects.has("connection")) renderConnection(state.connection);
    if (aspects.has("session")) renderSession(state.session);
  }

  function renderSession(session) {
    const signIn = session.phase === "signed-out";
    el.signin.hidden = !signIn;
    el.app.hidden = signIn;
    el.skipLink.hidden = signIn;
    el.connection.hidden = signIn;
    el.account.hidden = !(session.required && session.phase === "signed-in");
    setText(el.principal, session.principal ?? "");
    el.principal.title = session.principal ?? "";
    const signingOut = session.pending === "sign-out";
    // aria-disabled rather than disabled: a failed sign-out leaves keyboard focus where it was.
    setAttr(el.signOut, "aria-disabled", String(signingOut));
    setText(el.signOut, signingOut ? "Signing out…" : "Sign out");

    const signingIn = session.pending === "sign-in";
    el.signinSubmit.disabled = signingIn;
    setText(el.signinSubmit, signingIn ? "Signing in…" : "Sign in");
    setAttr(el.signinForm, "aria-busy", String(signingIn));
    setText(el.signinNote, session.note ?? "");
    showText(el.apiKeyError, session.error ?? "");
    setFlag(el.apiKey, "aria-invalid", Boolean(session.error));

    if (session.focusToken > sessionFocusToken) {
      sessionFocusToken = session.focusToken;
      const target = session.focus === "key" ? el.apiKey : session.focus === "app" ? el.formsHeading : null;
      target?.focus();
    }
  }

  function paintRow(row, task, state, at) {
    const cancelHadFocus = doc.activeElement === row.refs.cancel;
    const detail = state.details.get(task.id);
    updateTaskRow(
      row,
      taskView(task, {
        now: at,
        clockSkewMs: state.clockSkewMs,
        kindTitle: kindTitles.get(task.kind),
        ui: state.taskUi.get(task.id),
        filter: state.filter,
        tag: state.tag,
        expanded: Boolean(detail),
      }),
    );
    paintDetail(row, task, detail);
    // The task finished under a focused Cancel button: keep the keyboard user on this task.
    if (cancelHadFocus && row.refs.cancel.hidden) {
      row.root.tabIndex = -1;
      row.root.focus({ preventScroll: true });
    }
  }

  /** An open row's details: created when it opens, removed when it closes, else patched. */
  function paintDetail(row, task, detail) {
    let box = row.detail;
    if (!detail) {
      if (box) {
        const hadFocus = box.root.contains(doc.activeElement);
        box.root.remove();
        row.detail = null;
        if (hadFocus) row.refs.toggle.focus();
      }
      return;
    }
    if (!box) {
      box = createTaskDetail(doc, task.id);
      box.logsFollow = follower(box.refs.logs);
      row.detail = box;
      row.root.append(box.root);
    }
    const { refs } = box;
    const status = detailStatusView(detail, task);
    showText(refs.status, status.text);
    setAttr(refs.status, "data-status", detail.status);
    showText(refs.resume, status.resume);
    if (status.resume) setAttr(refs.resume, "aria-label", `${status.resume}: ${row.view?.toggleLabel ?? "output"}`);
    if (task.metadata !== box.metadata) {
      box.metadata = task.metadata;
      const pairs = metadataEntries(doc, task.metadata);
      refs.metadata.replaceChildren(...pairs);
      refs.metadata.hidden = pairs.length === 0;
    }
    paintStreams(box, task.id, detail);
    paintOutputLogs(box, detail.output.logs);
    const nothing = detail.output.streams.size === 0 && detail.output.logs.length === 0;
    const empty = !nothing || detail.status === "loading" ? "" : FINAL_STATES.has(task.state) ? "This task wrote no output." : "No output yet.";
    showText(refs.empty, empty);
    setAttr(box.root, "aria-busy", String(detail.status === "loading"));
  }

  function paintStreams(box, taskId, detail) {
    const streams = detail.output.streams;
    for (const [name, stream] of box.streams) {
      if (streams.get(name)?.type !== stream.type) {
        stream.root.remove();
        box.streams.delete(name);
      }
    }
    for (const stream of streams.values()) {
      let shown = box.streams.get(stream.name);
      if (!shown) {
        shown = createOutputStream(doc, taskId, stream);
        shown.following = follower(shown.body);
        box.streams.set(stream.name, shown);
        box.refs.streams.append(shown.root);
      }
      paintStream(shown, stream);
      updateOutputStreamHead(shown, stream, detail.copied?.stream === stream.name ? detail.copied : null);
    }
  }

  /** Appends what arrived since the last paint; paints afresh only a stream the store replaced. */
  function paintStream(shown, stream) {
    if (shown.source !== stream) {
      shown.body.replaceChildren();
      shown.source = stream;
      shown.painted = 0;
    }
    let added = false;
    if (stream.type === "text") {
      if (stream.text.length > shown.painted) {
        appendText(shown.body, stream.text.slice(shown.painted));
        shown.painted = stream.text.length;
        added = true;
      }
    } else if (stream.items.length > shown.painted) {
      const fragment = doc.createDocumentFragment();
      for (let i = shown.painted; i < stream.items.length; i += 1) fragment.append(createOutputItem(doc, stream.items[i]));
      shown.body.append(fragment);
      shown.painted = stream.items.length;
      added = true;
    }
    if (added) shown.following.stick();
  }

  function paintOutputLogs(box, logs) {
    const list = box.refs.logs;
    let first = logs.length;
    while (first > 0 && logs[first - 1].key > box.logKey) first -= 1;
    if (first < logs.length) {
      const fragment = doc.createDocumentFragment();
      for (let i = first; i < logs.length; i += 1) fragment.append(createOutputLogLine(doc, logs[i]));
      list.append(fragment);
      box.logKey = logs[logs.length - 1].key;
      box.logsFollow.stick();
    }
    while (list.children.length > logs.length) list.firstElementChild.remove();
    box.refs.logsSection.hidden = logs.length === 0;
  }

  /**
   * Keeps a scrolling box at its end while the reader is there: `stick()` after an append scrolls
   * to the end unless they scrolled up (then it stays put until they come back down).
   */
  function follower(element) {
    let follow = true;
    element.addEventListener(
      "scroll",
      () => {
        follow = element.scrollHeight - element.scrollTop - element.clientHeight <= FOLLOW_SLACK_PX;
      },
      { passive: true },
    );
    return {
      stick() {
        if (follow) element.scrollTop = element.scrollHeight;
      },
    };
  }

  /** Brings the list in line with state.order, creating rows for new ids; returns rows painted. */
  function renderOrder(state, at, everyRow) {
    const painted = new Set();
    const highlightNew = rows.size > 0; // not the rows of the first load
    for (const [id, row] of rows) {
      if (!state.tasks.has(id)) {
        row.root.remove();
        rows.delete(id);
      }
    }
    let cursor = el.tasks.firstElementChild;
    for (const id of state.order) {
      let row = rows.get(id);
      if (!row) {
        row = createTaskRow(doc, id);
        if (highlightNew) row.root.classList.add("task--new");
        rows.set(id, row);
        paintRow(row, state.tasks.get(id), state, at);
        painted.add(id);
      } else if (everyRow) {
        paintRow(row, state.tasks.get(id), state, at);
        painted.add(id);
      }
      if (row.root === cursor) cursor = cursor.nextElementSibling;
      else el.tasks.insertBefore(row.root, cursor);
    }
    return painted;
  }

  function renderSummary(state) {
    let active = 0;
    let visible = 0;
    for (const task of state.tasks.values()) {
      if (ACTIVE_STATES.has(task.state)) active += 1;
      if (matchesFilter(state.filter, task, state.tag)) visible += 1;
    }
    const total = state.tasks.size;
    const title = active ? `(${active}) taskstream` : "taskstream";
    if (doc.title !== title) doc.title = title;
    setText(el.summary, total ? `${total} task${total === 1 ? "" : "s"}, ${active} active` : "");
    const { phase, message } = state.tasksStatus;
    showText(el.status, phase === "loading" ? "Loading tasks…" : phase === "syncing" ? "Resynchronising with the server…" : "");
    setAttr(el.tasks, "aria-busy", String(phase === "loading" || phase === "syncing"));
    const what = state.filter === "all" ? "tasks" : `${state.filter} tasks`;
    let emptyText = "";
    if (phase === "ready" && visible === 0) {
      if (state.tag) emptyText = `No ${what} tagged ${state.tag}.`;
      else emptyText = total === 0 ? "No tasks yet. Start one with a form." : `No ${what}.`;
    }
    showText(el.empty, emptyText);
    el.notice.hidden = phase !== "error";
    if (phase === "error") setText(el.noticeText, message);
  }

  /** The tag filter's input shows the tag in force, unless the person is typing in it. */
  function renderTag(state) {
    if (!el.tagInput) return;
    if (doc.activeElement !== el.tagInput && el.tagInput.value !== state.tag) el.tagInput.value = state.tag;
    showText(el.tagError, state.tagError);
    setFlag(el.tagInput, "aria-invalid", Boolean(state.tagError));
  }

  /** The tags of the tasks listed, offered as the filter's suggestions. */
  function renderTagOptions(state) {
    if (!el.tagOptions) return;
    const tags = new Set();
    for (const task of state.tasks.values()) {
      for (const tag of Array.isArray(task.tags) ? task.tags : []) if (tags.size < MAX_TAG_OPTIONS) tags.add(tag);
    }
    const sorted = [...tags].sort();
    const key = sorted.join(",");
    if (key === tagOptionsKey) return;
    tagOptionsKey = key;
    el.tagOptions.replaceChildren(...sorted.map((tag) => h(doc, "option", { value: tag })));
  }

  function renderConnection(connection) {
    el.connection.dataset.state = connection;
    setText(el.connectionText, CONNECTION_LABELS[connection] ?? connection);
  }

  function renderKinds(state) {
    const { phase, message } = state.kindsStatus;
    setAttr(el.kinds, "aria-busy", String(phase === "loading"));
    forms.clear();
    if (phase === "error") {
      el.kinds.replaceChildren(
        h(doc, "p", { class: "placeholder placeholder--error", text: `Couldn't load task kinds: ${message}` }),
        h(doc, "button", { type: "button", class: "button", "data-action": "retry-kinds", text: "Try again" }),
      );
      return;
    }
    if (phase !== "ready" || state.kinds.length === 0) {
      const text = phase === "ready" ? "The server offers no task kinds." : "Loading task kinds…";
      el.kinds.replaceChildren(h(doc, "p", { class: "placeholder", text }));
      return;
    }
    const built = state.kinds.map((kind, index) => {
      const form = createKindForm(doc, kind, kind.fields, `kind${index}`);
      forms.set(kind.name, { ...form, focusToken: state.forms.get(kind.name)?.focusToken ?? 0 });
      return form.form;
    });
    el.kinds.replaceChildren(...built);
  }

  function renderForms(state) {
    for (const [name, form] of forms) {
      const status = state.forms.get(name) ?? { submitting: false, errors: {}, formErrors: [], focus: null, focusToken: 0 };
      form.submit.disabled = status.submitting;
      setText(form.submit, status.submitting ? "Starting…" : "Run task");
      setAttr(form.form, "aria-busy", String(status.submitting));
      for (const [field, { control, error }] of Object.entries(form.controls)) {
        const message = status.errors[field] ?? "";
        showText(error, message);
        setFlag(control, "aria-invalid", Boolean(message));
      }
      setText(form.status, status.message ?? "");
      showText(form.formError, status.formErrors.join(" "));
      if (status.focusToken > form.focusToken) {
        form.focusToken = status.focusToken;
        const target = status.focus === FORM_FOCUS ? form.formError : form.controls[status.focus]?.control;
        if (target === form.formError) target.setAttribute("tabindex", "-1");
        target?.focus();
      }
    }
  }

  /**
   * Newest line first, like the task list: new lines go in at the top, so nothing has to be
   * scrolled (and no layout read) per frame; while the reader looks at older lines further down,
   * the browser's scroll anchoring keeps them in place.
   */
  function renderLog(state) {
    const list = el.log;
    const fresh = state.log.filter((entry) => entry.key > lastLogKey);
    if (fresh.length) {
      const fragment = doc.createDocumentFragment();
      for (let i = fresh.length - 1; i >= 0; i -= 1) fragment.append(createLogLine(doc, fresh[i], kindTitles.get(fresh[i].kind)));
      list.prepend(fragment);
      lastLogKey = fresh[fresh.length - 1].key;
    }
    while (list.children.length > state.log.length) list.lastElementChild.remove();
  }

  function readForm(form) {
    const raw = {};
    for (const control of form.elements) {
      if (control.name) raw[control.name] = readControl(control);
    }
    return raw;
  }

  function bind(next) {
    handlers = next;
    el.signinForm.addEventListener("submit", (event) => {
      event.preventDefault();
      const key = el.apiKey.value;
      el.apiKey.value = ""; // the key lives in no input, store or URL once handed over
      handlers.signIn?.(key);
    });
    el.kinds.addEventListener("submit", (event) => {
      event.preventDefault();
      const form = event.target.closest("form[data-kind]");
      if (form) handlers.submit?.(form.dataset.kind, readForm(form));
    });
    const onEdit = (commit) => (event) => {
      const control = event.target;
      const form = control.form;
      if (form?.dataset.kind && control.name) handlers.edit?.(form.dataset.kind, control.name, readControl(control), { commit });
    };
    el.kinds.addEventListener("input", onEdit(false));
    el.kinds.addEventListener("change", onEdit(true));
    doc.addEventListener("click", (event) => {
      const target = event.target.closest?.("button[data-action]");
      if (!target) return;
      const action = target.dataset.action;
      if (action === "cancel") handlers.cancel?.(target.dataset.id);
      else if (action === "toggle-output") handlers.toggleOutput?.(target.dataset.id);
      else if (action === "resume-output") handlers.resumeOutput?.(target.dataset.id);
      else if (action === "copy-output") handlers.copyOutput?.(target.dataset.id, target.dataset.stream);
      else if (action === "filter-tag") handlers.filterTag?.(target.dataset.tag);
      else if (action === "retry-kinds") handlers.retryKinds?.();
      else if (action === "retry-tasks") handlers.retryTasks?.();
      else if (action === "clear-log") handlers.clearLog?.();
      else if (action === "sign-out") handlers.signOut?.();
    });
    el.tasks.addEventListener("animationend", (event) => event.target.classList.remove("task--new"));
    el.filter.addEventListener("change", (event) => {
      if (event.target.name === "filter") handlers.filter?.(event.target.value);
    });
    if (el.tagForm) {
      el.tagForm.addEventListener("submit", (event) => {
        event.preventDefault();
        handlers.filterTag?.(el.tagInput.value);
      });
      el.tagInput.addEventListener("change", () => handlers.filterTag?.(el.tagInput.value));
      // Emptied (the search field's clear button, or deleted): every task again, at once.
      el.tagInput.addEventListener("input", () => {
        if (el.tagInput.value === "") handlers.filterTag?.("");
      });
    }
  }

  return { requestRender, render, bind };
}

/** A control's raw value: checkbox -> boolean, unparseable number -> null, else the string. */
function readControl(control) {
  if (control.type === "checkbox") return control.checked;
  if (control.type === "number" && control.validity?.badInput) return null;
  return control.value;
}
