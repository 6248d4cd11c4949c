/**
 * Pure builders of DOM nodes and text. Server data (params, results, errors, messages) only ever
 * reaches the page as text nodes or attribute values: nothing here parses markup, so a param like
 * `<img onerror=...>` is shown, never run. Builders take the document as an argument; `escape()`
 * is there for anyone who must produce an HTML string.
 */

import { ACTIVE_STATES, FINAL_STATES } from "../client/src/index.js";
import { matchesFilter } from "./store.js";
import {
  formatClock,
  formatCountdown,
  formatDuration,
  formatError,
  formatParams,
  formatPercent,
  formatStreamSize,
  formatValue,
  parseTime,
  shortId,
  stateLabel,
} from "../client/src/format.js";
import { initialValue } from "./schema-form.js";
import { TAGS_FIELD } from "./tags.js";
import { h, setAttr, setProp, setText, showText } from "./dom.js";

const HTML_ESCAPES = { "&": "&amp;", "<": "&lt;", ">": "&gt;", '"': "&quot;", "'": "&#39;" };

export function escape(value) {
  return String(value ?? "").replace(/[&<>"']/g, (char) => HTML_ESCAPES[char]);
}

export const CONNECTION_LABELS = {
  connecting: "Connecting…",
  live: "Live",
  reconnecting: "Reconnecting…",
  offline: "Offline",
  closed: "Disconnected",
};

/**
 * Everything a task row shows, as plain values: the DOM update below only copies them.
 * `context`: { now, clockSkewMs, kindTitle, ui: {cancelling, note}, filter, tag, expanded }.
 */
export function taskView(
  task,
  { now = Date.now(), clockSkewMs = 0, kindTitle, ui = {}, filter = "all", tag = "", expanded = false } = {},
) {
  const serverNow = now - clockSkewMs;
  const active = ACTIVE_STATES.has(task.state);
  const cancelling = active && (task.cancel_requested || ui.cancelling === true);
  const progress = progressView(task);
  const meta = [];
  const created = formatClock(task.created_at);
  if (created) meta.push(`Created ${created}`);
  if (task.attempts > 1 || task.state === "retrying") meta.push(`Attempt ${task.attempts}`);
  if (task.state === "retrying" && task.retry_at) {
    meta.push(`Next try ${formatCountdown(parseTime(task.retry_at) - serverNow)}`);
  }
  const duration = durationText(task, serverNow);
  if (duration) meta.push(duration);
  // Only a final task's summary is whole: the list's stream carries no output chunks.
  const output = FINAL_STATES.has(task.state) ? outputSummary(task.output) : "";
  if (output) meta.push(output);
  const outcome = outcomeView(task);
  const kind = kindTitle || task.kind;
  const subject = `${kind} (${shortId(task.id)})`; // names the task in its buttons' labels
  const tags = Array.isArray(task.tags) ? task.tags : [];
  return {
    id: task.id,
    state: task.state,
    kind,
    shortId: shortId(task.id),
    badge: cancelling && task.state === "running" ? "Cancelling" : stateLabel(task.state),
    params: formatParams(task.params) || "no parameters",
    ...progress,
    meta: meta.join(" · "),
    outcomeLabel: outcome.label,
    outcomeText: outcome.text,
    outcomeTitle: outcome.title,
    canCancel: active,
    cancelDisabled: cancelling,
    cancelText: cancelling ? "Cancelling…" : "Cancel",
    cancelLabel: `${cancelling ? "Cancelling" : "Cancel"} ${subject}`,
    note: ui.note ?? "",
    hidden: !matchesFilter(filter, task, tag),
    tags,
    tagsKey: tags.join(","),
    expanded,
    toggleLabel: `Output of ${subject}`,
  };
}

/** "Output: output 1,234 characters, rows 2 items (truncated)"; "" for no streams. */
export function outputSummary(output) {
  const streams = output && typeof output === "object" ? Object.entries(output) : [];
  if (!streams.length) return "";
  const parts = streams.map(([name, s]) => `${name} ${formatStreamSize(s?.type, s?.length ?? 0)}${s?.truncated ? " (truncated)" : ""}`);
  return `Output: ${parts.join(", ")}`;
}

function progressView(task) {
  const progress = task.progress;
  let percent = null;
  if (progress && Number.isFinite(progress.percent)) percent = progress.percent;
  else if (progress && Number.isFinite(progress.current) && progress.total > 0) {
    percent = (100 * progress.current) / progress.total;
  }
  if (task.state === "succeeded") percent = 100;
  if (percent === null && task.state !== "running") percent = 0;
  const clamped = percent === null ? null : Math.min(100, Math.max(0, percent));
  const message = typeof progress?.message === "string" ? progress.message : "";
  return {
    percent: clamped, // null: running with no progress reported yet (indeterminate)
    percentText: clamped === null ? "" : formatPercent(clamped),
    message,
    progressText: [clamped === null ? "Working" : formatPercent(clamped), message].filter(Boolean).join(", "),
  };
}

function durationText(task, serverNow) {
  const started = parseTime(task.started_at);
  const finished = parseTime(task.finished_at);
  if (FINAL_STATES.has(task.state)) {
    if (Number.isNaN(started)) return task.state === "cancelled" ? "Cancelled before it started" : "";
    return Number.isNaN(finished) ? "" : `Took ${formatDuration(finished - started)}`;
  }
  if (Number.isNaN(started)) return task.state === "queued" ? "Waiting for a worker" : "";
  const elapsed = formatDuration(serverNow - started);
  return task.state === "running" ? `Running for ${elapsed}` : `Elapsed ${elapsed}`;
}

function outcomeView(task) {
  if (task.state === "succeeded") {
    return { label: "Result", text: formatValue(task.result, 300), title: formatValue(task.result, 4000) };
  }
  if (task.error && (task.state === "failed" || ACTIVE_STATES.has(task.state))) {
    const text = formatError(task.error);
    return { label: task.state === "failed" ? "Error" : "Last error", text, title: text };
  }
  return { label: "", text: "", title: "" };
}

/** The static skeleton of a task row; `updateTaskRow` fills it. Keyed by task id. */
export function createTaskRow(doc, id) {
  const refs = {};
  const ref = (name, element) => (refs[name] = element);
  const root = h(
    doc,
    "li",
    { class: "task", "data-id": id },
    h(
      doc,
      "div",
      { class: "task__head" },
      ref("kind", h(doc, "h3", { class: "task__kind" })),
      ref("badge", h(doc, "span", { class: "badge" })),
      ref("id", h(doc, "span", { class: "task__id" })),
      ref(
        "cancel",
        h(doc, "button", { type: "button", class: "button button--quiet task__cancel", "data-action": "cancel", "data-id": id }),
      ),
      ref(
        "toggle",
        h(doc, "button", {
          type: "button",
          class: "button button--quiet task__toggle",
          "data-action": "toggle-output",
          "data-id": id,
          "aria-expanded": "false",
          "aria-controls": detailId(id),
          text: "Output",
        }),
      ),
    ),
    ref("params", h(doc, "p", { class: "task__params" })),
    ref("tags", h(doc, "ul", { class: "task__tags", "aria-label": "Tags", hidden: true })),
    h(
      doc,
      "div",
      { class: "task__progress" },
      ref("progress", h(doc, "progress", { max: "100" })),
      ref("percent", h(doc, "span", { class: "task__percent", "aria-hidden": "true" })),
    ),
    ref("message", h(doc, "p", { class: "task__message" })),
    ref("meta", h(doc, "p", { class: "task__meta" })),
    ref(
      "outcome",
      h(
        doc,
        "p",
        { class: "task__outcome" },
        ref("outcomeLabel", h(doc, "span", { class: "task__outcome-label" })),
        ref("outcomeText", h(doc, "span", { class: "task__outcome-text" })),
      ),
    ),
    ref("note", h(doc, "p", { class: "task__note", role: "status" })),
  );
  return { root, refs, view: null };
}

/** Copies a `taskView` into a row, touching only what differs from the last one. */
export function updateTaskRow(row, view) {
  const { root, refs } = row;
  const last = row.view ?? {};
  if (view.state !== last.state) root.dataset.state = view.state;
  setProp(root, "hidden", view.hidden);
  setText(refs.kind, view.kind);
  setText(refs.badge, view.badge);
  setText(refs.id, view.shortId);
  if (view.id !== last.id) refs.id.title = view.id;
  setText(refs.params, view.params);
  if (view.percent !== last.percent) {
    if (view.percent === null) refs.progress.removeAttribute("value");
    else refs.progress.value = view.percent;
  }
  if (view.progressText !== last.progressText) {
    refs.progress.setAttribute("aria-label", `Progress of ${view.kind} (${view.shortId})`);
    refs.progress.setAttribute("aria-valuetext", view.progressText);
  }
  setText(refs.percent, view.percentText);
  showText(refs.message, view.message);
  setText(refs.meta, view.meta);
  setText(refs.outcomeLabel, view.outcomeLabel);
  setText(refs.outcomeText, view.outcomeText);
  if (view.outcomeTitle !== last.outcomeTitle) refs.outcomeText.title = view.outcomeTitle;
  setProp(refs.outcome, "hidden", !view.outcomeText);
  if (view.outcomeLabel !== last.outcomeLabel) refs.outcome.dataset.kind = view.outcomeLabel.toLowerCase().replace(/\s+/g, "-");
  setProp(refs.cancel, "hidden", !view.canCancel);
  // aria-disabled rather than disabled: a disabled button would drop keyboard focus mid-cancel.
  if (view.cancelDisabled !== last.cancelDisabled) refs.cancel.setAttribute("aria-disabled", String(view.cancelDisabled));
  setText(refs.cancel, view.cancelText);
  if (view.cancelLabel !== last.cancelLabel) refs.cancel.setAttribute("aria-label", view.cancelLabel);
  showText(refs.note, view.note);
  if (view.tagsKey !== last.tagsKey) {
    const document = root.ownerDocument;
    refs.tags.replaceChildren(...view.tags.map((tag) => h(document, "li", {}, tagButton(document, tag))));
    refs.tags.hidden = view.tags.length === 0;
  }
  if (view.expanded !== last.expanded) {
    refs.toggle.setAttribute("aria-expanded", String(view.expanded));
    root.toggleAttribute("data-expanded", view.expanded);
  }
  if (view.toggleLabel !== last.toggleLabel) refs.toggle.setAttribute("aria-label", view.toggleLabel);
  row.view = view;
}

/** A tag on a row: pressing it filters the list by that tag. */
function tagButton(document, tag) {
  return h(document, "button", {
    type: "button",
    class: "tag",
    "data-action": "filter-tag",
    "data-tag": tag,
    title: `Show only tasks tagged ${tag}`,
    text: tag,
  });
}

export function detailId(taskId) {
  return `task-${taskId}-output`;
}

/**
 * The skeleton of an open row's details: a status line (with Resume), the metadata, the output
 * streams and the log lines. The view fills it, appending as output arrives.
 */
export function createTaskDetail(document, taskId) {
  const refs = {};
  const ref = (name, element) => (refs[name] = element);
  const root = h(
    document,
    "div",
    { class: "output", id: detailId(taskId), role: "region", "aria-label": "Output" },
    h(
      document,
      "div",
      { class: "output__status" },
      ref("status", h(document, "p", { class: "output__status-text", role: "status" })),
      ref("resume", h(document, "button", { type: "button", class: "button button--quiet", "data-action": "resume-output", "data-id": taskId, hidden: true })),
    ),
    ref("metadata", h(document, "dl", { class: "output__metadata", "aria-label": "Metadata", hidden: true })),
    ref("streams", h(document, "div", { class: "output__streams" })),
    ref("empty", h(document, "p", { class: "output__empty", hidden: true })),
    ref(
      "logsSection",
      h(
        document,
        "section",
        { class: "output__logs-section", hidden: true },
        h(document, "h4", { class: "output__heading", text: "Log" }),
        ref("logs", h(document, "ol", { class: "output__logs" })),
      ),
    ),
  );
  return { root, refs, streams: new Map(), logKey: 0, metadata: undefined };
}

/** What an open row's status line says, as plain values. */
export function detailStatusView(detail, task) {
  const running = task && ACTIVE_STATES.has(task.state);
  switch (detail.status) {
    case "loading":
      return { text: "Loading output…", resume: "" };
    case "paused":
      return { text: detail.message || "Live output paused.", resume: "Resume" };
    case "error":
      return { text: detail.message || "Couldn't load the output.", resume: "Try again" };
    case "live": {
      const connection = detail.connection;
      if (connection === "reconnecting" || connection === "connecting") return { text: CONNECTION_LABELS[connection], resume: "" };
      if (connection === "offline") return { text: "Offline: waiting to reconnect.", resume: "" };
      return { text: running ? "Live" : "", resume: "" };
    }
    default:
      return { text: "", resume: "" };
  }
}

/** One output stream's box: a head (name, size, Copy) and a body the view appends to. */
export function createOutputStream(document, taskId, stream) {
  const label = `${stream.name} stream`;
  const body =
    stream.type === "text"
      ? h(document, "pre", { class: "output__text", tabindex: "0", "aria-label": label })
      : h(document, "ol", { class: "output__items", tabindex: "0", "aria-label": label });
  const size = h(document, "span", { class: "output__size" });
  const copied = h(document, "span", { class: "output__copied", role: "status" });
  const copy = h(document, "button", {
    type: "button",
    class: "button button--quiet output__copy",
    "data-action": "copy-output",
    "data-id": taskId,
    "data-stream": stream.name,
    "aria-label": `Copy the ${label}`,
    text: "Copy",
  });
  const root = h(
    document,
    "section",
    { class: "output__stream", "data-stream": stream.name, "data-type": stream.type },
    h(document, "div", { class: "output__head" }, h(document, "h4", { class: "output__heading", text: stream.name }), size, copied, copy),
    body,
  );
  return { root, body, size, copied, copy, type: stream.type, source: null, painted: 0 };
}

/** The head of a stream's box: its size, whether it was cut, whether Copy worked. */
export function updateOutputStreamHead(box, stream, copied) {
  setText(box.size, `${formatStreamSize(stream.type, stream.length)}${stream.truncated ? " · truncated at the output limit" : ""}`);
  setAttr(box.root, "data-truncated", String(stream.truncated));
  setText(box.copied, copied ? (copied.ok ? "Copied" : "Couldn't copy") : "");
}

/** One JSON item of a stream, as text. */
export function createOutputItem(document, item) {
  return h(document, "li", { class: "output__item", text: formatValue(item, 4000) });
}

/** One log line of an open row: level and message, as text. */
export function createOutputLogLine(document, entry) {
  if (entry.level === "attempt") return h(document, "li", { class: "output__log output__log--attempt", text: entry.message });
  return h(
    document,
    "li",
    { class: "output__log", "data-level": entry.level },
    entry.at ? logTime(document, entry.at) : null,
    entry.at ? " " : null,
    h(document, "span", { class: "output__level", text: entry.level }),
    " ",
    h(document, "span", { class: "output__message", text: entry.message }),
  );
}

/** The metadata as `dt`/`dd` pairs, values as compact JSON text. */
export function metadataEntries(document, metadata) {
  const entries = metadata && typeof metadata === "object" ? Object.entries(metadata) : [];
  return entries.map(([key, value]) =>
    h(document, "div", { class: "output__pair" }, h(document, "dt", { text: key }), h(document, "dd", { text: formatValue(value, 500) })),
  );
}

/** One line of the updates log, as text: "started, attempt 2", "progress 40% step 2 of 5". */
export function logText(entry) {
  if (entry.source === "note") return entry.message;
  switch (entry.type) {
    case "queued":
      return "queued";
    case "started":
      return entry.attempt > 1 ? `started, attempt ${entry.attempt}` : "started";
    case "progress": {
      const percent = Number.isFinite(entry.progress?.percent) ? formatPercent(entry.progress.percent) : "";
      return ["progress", percent, entry.progress?.message ?? ""].filter(Boolean).join(" ");
    }
    case "retrying": {
      const wait = parseTime(entry.retryAt) - parseTime(entry.at);
      const when = Number.isFinite(wait) ? ` ${formatCountdown(wait)}` : "";
      const why = entry.error ? ` after ${formatError(entry.error)}` : "";
      return `will retry${when}${why}`;
    }
    case "succeeded":
      return `succeeded: ${formatValue(entry.result, 120)}`;
    case "failed":
      return `failed: ${formatError(entry.error) || "unknown error"}`;
    case "cancelled":
      return "cancelled";
    default:
      return String(entry.type);
  }
}

/** When a log line happened, as the local clock. */
function logTime(document, at) {
  return h(document, "time", { class: "log__time", datetime: at, text: formatClock(at) });
}

export function createLogLine(doc, entry, kindTitle) {
  const subject = entry.source === "event" ? `${kindTitle || entry.kind} ${shortId(entry.taskId)}` : "";
  const line = h(
    doc,
    "li",
    { class: "log__line", "data-type": entry.type ?? entry.source, "data-tone": entry.tone },
    logTime(doc, entry.at),
    " ",
    subject ? h(doc, "span", { class: "log__task", text: subject }) : null,
    subject ? " " : null,
    h(doc, "span", { class: "log__text", text: logText(entry) }),
  );
  // Progress ticks stay out of the accessibility tree, so the live region speaks state changes only.
  if (!entry.announce) line.setAttribute("aria-hidden", "true");
  return line;
}

/** "Between 1 and 60", "At least 0", "Up to 10 characters". */
export function constraintHint(field) {
  if (field.type === "number" || field.type === "integer") {
    // Bounds that only keep numbers finite or exact (|n| of a billion or more) are not worth a hint.
    const shown = (n) => (n !== undefined && Math.abs(n) < 1e9 ? n : undefined);
    const [min, max] = [shown(field.minimum), shown(field.maximum)];
    const [xmin, xmax] = [shown(field.exclusiveMinimum), shown(field.exclusiveMaximum)];
    const low = min !== undefined ? `${min}` : xmin !== undefined ? `more than ${xmin}` : null;
    const high = max !== undefined ? `${max}` : xmax !== undefined ? `less than ${xmax}` : null;
    const whole = field.type === "integer" ? "Whole number" : "Number";
    if (low !== null && high !== null) return `${whole}, ${low} to ${high}`;
    if (low !== null) return `${whole}, at least ${low}`;
    if (high !== null) return `${whole}, at most ${high}`;
    return "";
  }
  if (field.type === "string") {
    if (field.minLength !== undefined && field.maxLength !== undefined) return `${field.minLength} to ${field.maxLength} characters`;
    if (field.maxLength !== undefined) return `Up to ${field.maxLength} characters`;
    if (field.minLength !== undefined) return `At least ${field.minLength} characters`;
  }
  if (field.type === "json") return "JSON value";
  return "";
}

/**
 * A form for one task kind. `prefix` makes ids unique in the page. Returns the form, its submit
 * button, status line, form-level error box, and per field `{ control, error }`.
 */
export function createKindForm(doc, kind, fields, prefix) {
  const controls = {};
  const heading = `${prefix}-title`;
  const formError = h(doc, "div", { class: "kind__error", role: "alert", hidden: true });
  const submit = h(doc, "button", { type: "submit", class: "button button--primary", text: "Run task" });
  const status = h(doc, "p", { class: "kind__status", role: "status" });
  const form = h(
    doc,
    "form",
    { class: "kind", novalidate: true, "data-kind": kind.name, "aria-labelledby": heading },
    h(doc, "h3", { class: "kind__title", id: heading, text: kind.title || kind.name }),
    kind.description ? h(doc, "p", { class: "kind__description", text: kind.description }) : null,
    formError,
    fields.map((field, index) => {
      const built = createField(doc, field, `${prefix}-f${index}`);
      controls[field.name] = built;
      return built.root;
    }),
    (controls[TAGS_FIELD] = createField(doc, TAGS_INPUT, `${prefix}-tags`)).root,
    h(doc, "div", { class: "kind__actions" }, status, submit),
  );
  return { form, submit, status, formError, controls };
}

/** The optional tags input every kind form ends with; the controller parses its text. */
const TAGS_INPUT = Object.freeze({
  name: TAGS_FIELD,
  label: "Tags",
  description: "Optional, comma separated, e.g. user:42, report",
  type: "string",
  required: false,
  nullable: false,
  hasDefault: false,
});

function createField(doc, field, id) {
  const description = (field.description ?? "").trim().replace(/[.;:]$/, "");
  const hintText = [description, constraintHint(field)].filter(Boolean).join(". ");
  const hint = hintText ? h(doc, "p", { class: "field__hint", id: `${id}-hint`, text: hintText }) : null;
  const error = h(doc, "p", { class: "field__error", id: `${id}-error`, hidden: true });
  const describedBy = [hint ? `${id}-hint` : null, `${id}-error`].filter(Boolean).join(" ");
  const control = createControl(doc, field, id, describedBy);
  const required = field.required ? h(doc, "span", { class: "field__required", "aria-hidden": "true", text: " *" }) : null;
  if (field.type === "boolean") {
    const label = h(doc, "label", { class: "field__check", for: id }, control, " ", field.label, required);
    return { root: h(doc, "div", { class: "field field--check" }, label, hint, error), control, error };
  }
  const label = h(doc, "label", { class: "field__label", for: id }, field.label, required);
  return { root: h(doc, "div", { class: "field" }, label, control, hint, error), control, error };
}

function createControl(doc, field, id, describedBy) {
  const common = { id, name: field.name, "aria-describedby": describedBy, required: field.required && !field.nullable };
  const value = initialValue(field);
  switch (field.type) {
    case "boolean":
      return h(doc, "input", { ...common, type: "checkbox", checked: value, required: false });
    case "enum": {
      const select = h(doc, "select", common);
      if (!field.hasDefault || !field.required) {
        select.append(h(doc, "option", { value: "", text: field.required ? "Choose…" : "—" }));
      }
      for (const option of field.options) select.append(h(doc, "option", { value: option.value, text: option.label }));
      select.value = value;
      return select;
    }
    case "number":
    case "integer":
      return h(doc, "input", {
        ...common,
        type: "number",
        inputmode: field.type === "integer" ? "numeric" : "decimal",
        min: field.minimum ?? field.exclusiveMinimum,
        max: field.maximum ?? field.exclusiveMaximum,
        step: field.step,
        value,
      });
    case "json":
      return h(doc, "textarea", { ...common, rows: "2", spellcheck: "false", text: value });
    default:
      return h(doc, "input", {
        ...common,
        type: "text",
        minlength: field.minLength,
        maxlength: field.maxLength,
        value,
        autocomplete: "off",
      });
  }
}
