/**
 * `<taskstream-task task-id="…" token="…" api="https://tasks.example.com">`: one task shown live
 * on any page, from a watch token: its state, progress, output, result or error, and the
 * countdown to a retry. Its attributes, properties, DOM events, parts and custom properties are
 * listed in `frontend/example/README.md`, beside a site that uses it.
 *
 * Deliberate choices (do not "fix" them without reading why):
 * 1. Strict Content-Security-Policy: no markup is parsed, no style attribute is written. The
 *    styles are a constructable stylesheet (`adoptedStyleSheets`), which `style-src` does not
 *    govern; the bar's width is set through the CSSOM (`style.setProperty`), which CSP allows.
 *    Where constructable stylesheets are missing, a `<style>` element is the fallback (a page
 *    with a strict CSP then shows the element unstyled, but working).
 * 2. Output is appended, never re-rendered: the text painted is kept, and an answer that extends
 *    it adds only the rest, to the last text node while it is short. A reader's selection and
 *    scroll position survive a busy stream.
 * 3. The live region announces state changes only; progress ticks and output chunks would drown
 *    a screen reader. The output box is focusable (it scrolls) but not live.
 * 4. The countdown to a retry counts to the server's `retry_at` on the server's clock, estimated
 *    from the events' `at` (delivery only adds delay, so the smallest lag seen is the best guess).
 */

import { ACTIVE_STATES, createClient, describeError, FINAL_STATES, streamText } from "./index.js";
import { formatCountdown, formatPercent, stateLabel } from "./format.js";

const TAG = "taskstream-task";
const RESTART_ATTRIBUTES = ["task-id", "token", "api", "stream"];
const CONNECTION_NOTES = { reconnecting: "Reconnecting…", connecting: "Connecting…" };
const TEXT_NODE_LIMIT = 4096;
const COPIED_MS = 2000;
const UPGRADED_PROPERTIES = ["taskId", "token", "api", "stream", "cancelable", "client", "tokenProvider", "canceller"];

const STYLES = `
:host {
  display: block;
  font-family: var(--taskstream-font, system-ui, sans-serif);
  color: var(--taskstream-text, #1b1f29);
  background: var(--taskstream-background, #fff);
  border: 1px solid var(--taskstream-border, #d8dce6);
  border-radius: var(--taskstream-radius, 10px);
  padding: 1rem;
  line-height: 1.45;
}
:host([hidden]), [hidden] { display: none !important; }
.head { display: flex; align-items: center; gap: 0.5rem; flex-wrap: wrap; }
.badge {
  display: inline-block; padding: 0.1rem 0.6rem; border-radius: 999px; font-size: 0.8rem;
  font-weight: 600; background: var(--taskstream-track, #eceff5); color: var(--taskstream-muted, #555d6e);
}
.badge[data-state="running"] { background: var(--taskstream-accent, #3b5bdb); color: #fff; }
.badge[data-state="retrying"] { background: var(--taskstream-warning, #b35c00); color: #fff; }
.badge[data-state="succeeded"] { background: var(--taskstream-success, #1f7a45); color: #fff; }
.badge[data-state="failed"] { background: var(--taskstream-danger, #c0262d); color: #fff; }
.notice { margin: 0; font-size: 0.85rem; color: var(--taskstream-muted, #555d6e); }
.notice.problem { color: var(--taskstream-danger, #c0262d); }
.spacer { flex: 1; }
button {
  font: inherit; font-size: 0.85rem; padding: 0.25rem 0.7rem; cursor: pointer;
  border: 1px solid var(--taskstream-border, #d8dce6); border-radius: var(--taskstream-radius, 10px);
  background: var(--taskstream-background, #fff); color: inherit;
}
button:hover { border-color: var(--taskstream-accent, #3b5bdb); }
button:focus-visible, pre:focus-visible {
  outline: 2px solid var(--taskstream-accent, #3b5bdb); outline-offset: 2px;
}
button:disabled { cursor: default; opacity: 0.6; }
.progress {
  margin-top: 0.75rem; height: 0.5rem; border-radius: 999px; overflow: hidden;
  background: var(--taskstream-track, #eceff5);
}
.bar {
  height: 100%; width: 0; border-radius: inherit; background: var(--taskstream-accent, #3b5bdb);
  transition: width 0.2s ease-out;
}
.progress.indeterminate .bar { width: 30%; animation: slide 1.2s ease-in-out infinite; }
@keyframes slide { from { margin-left: -30%; } to { margin-left: 100%; } }
@media (prefers-reduced-motion: reduce) {
  .bar { transition: none; }
  .progress.indeterminate .bar { animation: none; width: 100%; opacity: 0.4; }
}
.line { display: flex; gap: 0.5rem; margin: 0.35rem 0 0; font-size: 0.85rem; color: var(--taskstream-muted, #555d6e); }
.percent { font-variant-numeric: tabular-nums; font-weight: 600; }
.output {
  margin: 0.75rem 0 0; padding: 0.75rem; max-height: var(--taskstream-output-height, 16rem); overflow: auto;
  white-space: pre-wrap; overflow-wrap: anywhere; font: 0.85rem/1.5 var(--taskstream-mono, ui-monospace, monospace);
  background: var(--taskstream-output-background, #f6f7fa); border-radius: var(--taskstream-radius, 10px);
}
.result, .error, .retry { margin: 0.75rem 0 0; font-size: 0.9rem; }
.result code, .error code { font-family: var(--taskstream-mono, ui-monospace, monospace); overflow-wrap: anywhere; }
.error { color: var(--taskstream-danger, #c0262d); }
.retry { color: var(--taskstream-warning, #b35c00); }
.visually-hidden {
  position: absolute; width: 1px; height: 1px; margin: -1px; padding: 0; overflow: hidden;
  clip: rect(0 0 0 0); white-space: nowrap; border: 0;
}
`;

const Base = globalThis.HTMLElement ?? class {};
const sheets = new WeakMap(); // one constructed stylesheet per window, shared by its elements

export class TaskstreamTask extends Base {
  /** How an element makes its client when none is given; replaceable (tests, a custom build). */
  static createClient = createClient;

  static get observedAttributes() {
    return [...RESTART_ATTRIBUTES, "cancelable"];
  }

  #token = null;
  #client = null;
  #canceller = null;
  #refs;
  #abort = null;
  #restartQueued = false;
  #task = null;
  #announced = "";
  #shown = ""; // the output text painted so far
  #skewMs = null; // how far this clock runs ahead of the server's
  #countdown = null;
  #copiedTimer = null;
  #cancelling = false;
  #following = true; // the output box keeps to its end until the reader scrolls up
  #tokenProvider = null;

  constructor() {
    super();
    const root = this.attachShadow({ mode: "open" });
    adoptStyles(root);
    this.#refs = build(root);
    this.#refs.copy.addEventListener("click", () => this.#copy());
    this.#refs.cancel.addEventListener("click", () => this.#cancel());
    const box = this.#refs.output;
    box.addEventListener("scroll", () => {
      this.#following = box.scrollHeight - box.scrollTop - box.clientHeight < 8;
    });
  }

  get taskId() {
    return this.getAttribute("task-id") ?? "";
  }
  set taskId(value) {
    this.#reflect("task-id", value);
  }
  get api() {
    return this.getAttribute("api") ?? "";
  }
  set api(value) {
    this.#reflect("api", value);
  }
  get stream() {
    return this.getAttribute("stream") || "output";
  }
  set stream(value) {
    this.#reflect("stream", value);
  }
  get cancelable() {
    return this.hasAttribute("cancelable");
  }
  set cancelable(on) {
    this.toggleAttribute("cancelable", Boolean(on));
  }
  get token() {
    return this.#token;
  }
  set token(value) {
    const next = value ? String(value) : null;
    if (next === this.#token) return;
    this.#token = next;
    this.#scheduleRestart();
  }
  get client() {
    return this.#client;
  }
  set client(value) {
    this.#client = value ?? null;
    this.#scheduleRestart();
  }
  get canceller() {
    return this.#canceller;
  }
  set canceller(fn) {
    this.#canceller = typeof fn === "function" ? fn : null;
    this.#paintCancel();
  }
  /** `async (taskId) => token`: a fresh token when the API refuses the one held. */
  get tokenProvider() {
    return this.#tokenProvider;
  }
  set tokenProvider(fn) {
    this.#tokenProvider = typeof fn === "function" ? fn : null;
  }
  /** The task as applied so far, or null. */
  get task() {
    return this.#task;
  }

  connectedCallback() {
    // Properties a page set before this element was defined sit on the instance itself,
    // hiding the accessors: move them behind the accessors.
    for (const name of UPGRADED_PROPERTIES) {
      if (!Object.prototype.hasOwnProperty.call(this, name)) continue;
      const value = this[name];
      delete this[name];
      this[name] = value;
    }
    this.#scheduleRestart();
  }

  disconnectedCallback() {
    this.#stop();
  }

  attributeChangedCallback(name, before, after) {
    if (before === after) return;
    if (name === "token") this.#token = after || null;
    if (name === "cancelable") this.#paintCancel();
    else this.#scheduleRestart();
  }

  #reflect(name, value) {
    if (value === null || value === undefined || value === "") this.removeAttribute(name);
    else this.setAttribute(name, String(value));
  }

  /** Several changes in one turn (task-id and token set together) start one watch. */
  #scheduleRestart() {
    if (this.#restartQueued) return;
    this.#restartQueued = true;
    queueMicrotask(() => {
      this.#restartQueued = false;
      this.#restart();
    });
  }

  #restart() {
    this.#stop();
    this.#reset();
    const id = this.taskId;
    if (!this.isConnected || !id) return;
    const client = this.#client ?? TaskstreamTask.createClient({ baseUrl: this.api, token: this.#tokenSource(id) });
    const abort = new AbortController();
    this.#abort = abort;
    const mine = (fn) => (...args) => {
      if (this.#abort === abort) fn(...args);
    };
    this.#setConnection("connecting");
    const watch = client.watchTask(id, {
      signal: abort.signal,
      onSnapshot: mine((task, output) => {
        this.#showTask(task);
        this.#paintOutput(streamText(output?.streams?.get(this.stream)));
      }),
      onEvent: mine((event, task) => {
        this.#observeServerTime(event?.at);
        this.#showTask(task);
        this.#emit("taskstream-event", { event, task });
      }),
      onOutput: mine((stream, text) => {
        if (stream === this.stream) this.#paintOutput(text);
      }),
      onState: mine((state) => this.#setConnection(state)),
      onEnd: mine((task) => {
        this.#showTask(task);
        this.#emit("taskstream-end", { task });
      }),
      onError: mine((error) => {
        this.#notice(describeError(error), true);
        this.#emit("taskstream-error", { error });
      }),
    });
    watch?.done?.catch(() => {}); // reported through onError, or a stop
  }

  /** The token as given, and after a refusal whatever `tokenProvider` gives. */
  #tokenSource(id) {
    let given = this.#token;
    if (!this.#tokenProvider) return given;
    return async () => {
      if (given) {
        const first = given;
        given = null;
        return first;
      }
      if (!this.#tokenProvider) throw new Error("the token was refused and no tokenProvider is set");
      return this.#tokenProvider(id);
    };
  }

  #stop() {
    const abort = this.#abort;
    this.#abort = null;
    abort?.abort();
    this.#stopCountdown();
  }

  #reset() {
    const refs = this.#refs;
    this.#task = null;
    this.#announced = "";
    this.#shown = "";
    this.#skewMs = null;
    this.#cancelling = false;
    refs.output.textContent = "";
    this.#following = true;
    refs.status.textContent = "";
    this.#notice("", false);
    this.#showTask(null);
    this.#paintOutput("");
  }

  #showTask(task) {
    this.#task = task;
    const refs = this.#refs;
    const state = task?.state ?? "";
    const label = state ? stateLabel(state) : "Loading";
    setText(refs.badge, label);
    setAttr(refs.badge, "data-state", state || "loading");
    if (state) setAttr(this, "state", state);
    else this.removeAttribute("state");
    if (state && state !== this.#announced) {
      this.#announced = state;
      refs.status.textContent = `Task ${label.toLowerCase()}.`;
    }
    this.#paintProgress(task);
    this.#paintOutcome(task);
    this.#paintRetry();
    this.#paintCancel();
  }

  #paintProgress(task) {
    const { progress, bar } = this.#refs;
    const { percent, message } = progressOf(task);
    const shown = percent === null ? "" : `${formatPercent(percent)}`;
    progress.classList.toggle("indeterminate", percent === null);
    if (percent === null) progress.removeAttribute("aria-valuenow");
    else setAttr(progress, "aria-valuenow", String(Math.round(percent)));
    setAttr(progress, "aria-valuetext", [shown || (task ? "Working" : "Loading"), message].filter(Boolean).join(", "));
    bar.style.setProperty("width", percent === null ? "" : `${percent}%`);
    setText(this.#refs.percent, shown);
    setText(this.#refs.message, message);
  }

  #paintOutcome(task) {
    const { result, resultText, error, errorLabel, errorText } = this.#refs;
    const succeeded = task?.state === "succeeded";
    result.hidden = !succeeded;
    setText(resultText, succeeded ? valueText(task.result) : "");
    const problem = task?.error && (task.state === "failed" || ACTIVE_STATES.has(task.state)) ? errorOf(task.error) : "";
    error.hidden = !problem;
    setText(errorLabel, task?.state === "failed" ? "Error: " : "Last error: ");
    setText(errorText, problem);
  }

  #paintRetry() {
    const task = this.#task;
    const at = task?.state === "retrying" ? Date.parse(task.retry_at ?? "") : NaN;
    const { retry } = this.#refs;
    if (Number.isNaN(at)) {
      retry.hidden = true;
      setText(retry, "");
      this.#stopCountdown();
      return;
    }
    const attempt = Number.isInteger(task.attempts) && task.attempts > 0 ? `Attempt ${task.attempts} failed. ` : "";
    setText(retry, `${attempt}Next try ${formatCountdown(at - this.#serverNow())}`);
    retry.hidden = false;
    this.#countdown ??= setInterval(() => this.#paintRetry(), 1000);
  }

  #stopCountdown() {
    if (this.#countdown !== null) clearInterval(this.#countdown);
    this.#countdown = null;
  }

  #paintCancel() {
    if (!this.#refs) return;
    const { cancel } = this.#refs;
    const allowed = Boolean(this.#canceller) || this.cancelable;
    const active = ACTIVE_STATES.has(this.#task?.state);
    cancel.hidden = !(allowed && active);
    const pending = this.#cancelling || this.#task?.cancel_requested === true;
    cancel.disabled = pending;
    setText(cancel, pending ? "Cancelling…" : "Cancel");
  }

  #paintOutput(text) {
    const { output, copy } = this.#refs;
    const next = typeof text === "string" ? text : "";
    if (next.length >= this.#shown.length && next.startsWith(this.#shown)) {
      appendText(output, next.slice(this.#shown.length));
    } else {
      output.textContent = "";
      appendText(output, next);
    }
    this.#shown = next;
    output.hidden = !next;
    copy.hidden = !next;
    if (this.#following) output.scrollTop = output.scrollHeight;
  }

  #setConnection(state) {
    setAttr(this, "connection", state);
    if (this.#refs.notice.classList.contains("problem")) return;
    this.#notice(this.#task && FINAL_STATES.has(this.#task.state) ? "" : (CONNECTION_NOTES[state] ?? ""), false);
  }

  #notice(text, problem) {
    const { notice } = this.#refs;
    notice.classList.toggle("problem", problem);
    if (problem) setAttr(notice, "role", "alert");
    else notice.removeAttribute("role");
    setText(notice, text);
    notice.hidden = !text;
  }

  #observeServerTime(at) {
    const sent = Date.parse(at ?? "");
    if (Number.isNaN(sent)) return;
    const sample = Date.now() - sent;
    if (this.#skewMs === null || sample < this.#skewMs) this.#skewMs = sample;
  }

  #serverNow() {
    return Date.now() - (this.#skewMs ?? 0);
  }

  async #copy() {
    const { copy } = this.#refs;
    const copied = await copyText(this, this.#shown, this.#refs.output);
    setText(copy, copied ? "Copied" : "Copy failed");
    clearTimeout(this.#copiedTimer);
    this.#copiedTimer = setTimeout(() => setText(copy, "Copy output"), COPIED_MS);
  }

  async #cancel() {
    const id = this.#task?.id ?? this.taskId;
    if (!id || this.#cancelling) return;
    this.#cancelling = true;
    this.#paintCancel();
    const abort = this.#abort;
    try {
      if (this.#canceller) await this.#canceller(id);
      else await this.#watchClient().cancel(id);
    } catch (error) {
      if (this.#abort === abort) this.#notice(`Could not cancel: ${describeError(error)}`, true);
      this.#cancelling = false;
    }
    if (this.#abort === abort) this.#paintCancel();
  }

  #watchClient() {
    return this.#client ?? TaskstreamTask.createClient({ baseUrl: this.api, token: this.#token, credentials: "include" });
  }

  #emit(type, detail) {
    const View = this.ownerDocument?.defaultView;
    const Event = View?.CustomEvent ?? globalThis.CustomEvent;
    this.dispatchEvent(new Event(type, { detail, bubbles: true, composed: true }));
  }
}

function adoptStyles(root) {
  const view = root.ownerDocument?.defaultView ?? globalThis;
  const Sheet = view.CSSStyleSheet;
  if ("adoptedStyleSheets" in root && typeof Sheet?.prototype?.replaceSync === "function") {
    let sheet = sheets.get(view);
    if (!sheet) {
      sheet = new Sheet();
      sheet.replaceSync(STYLES);
      sheets.set(view, sheet);
    }
    root.adoptedStyleSheets = [sheet];
    return;
  }
  const style = root.ownerDocument.createElement("style");
  style.textContent = STYLES;
  root.append(style);
}

/** The element's skeleton, built node by node (no markup parsed). */
function build(root) {
  const doc = root.ownerDocument;
  const refs = {};
  const h = (tag, attributes = {}, ...children) => {
    const element = doc.createElement(tag);
    for (const [name, value] of Object.entries(attributes)) {
      if (name === "ref") refs[value] = element;
      else if (name === "text") element.textContent = value;
      else if (value === true) element.setAttribute(name, "");
      else element.setAttribute(name, value);
    }
    element.append(...children);
    return element;
  };
  root.append(
    h(
      "div",
      { class: "head" },
      h("span", { ref: "badge", part: "badge", class: "badge", "data-state": "loading", text: "Loading" }),
      h("p", { ref: "notice", part: "notice", class: "notice", hidden: true }),
      h("span", { class: "spacer" }),
      h("button", { ref: "copy", part: "copy", type: "button", hidden: true, text: "Copy output" }),
      h("button", { ref: "cancel", part: "cancel", type: "button", hidden: true, text: "Cancel" }),
    ),
    h("p", { ref: "status", class: "visually-hidden", role: "status", "aria-live": "polite", "aria-atomic": "true" }),
    h(
      "div",
      { ref: "progress", part: "progress", class: "progress", role: "progressbar", "aria-label": "Task progress", "aria-valuemin": "0", "aria-valuemax": "100" },
      h("div", { ref: "bar", part: "bar", class: "bar" }),
    ),
    h(
      "p",
      { class: "line", "aria-hidden": "true" },
      h("span", { ref: "percent", part: "percent", class: "percent" }),
      h("span", { ref: "message", part: "message", class: "message" }),
    ),
    h("p", { ref: "retry", part: "retry", class: "retry", hidden: true }),
    h("pre", { ref: "output", part: "output", class: "output", tabindex: "0", "aria-label": "Output", hidden: true }),
    h("p", { ref: "result", part: "result", class: "result", hidden: true }, "Result: ", h("code", { ref: "resultText" })),
    h("p", { ref: "error", part: "error", class: "error", hidden: true }, h("span", { ref: "errorLabel" }), h("code", { ref: "errorText" })),
  );
  return refs;
}

/** `{percent, message}`; percent null while running with no progress told (indeterminate). */
export function progressOf(task) {
  const progress = task?.progress;
  let percent = null;
  if (Number.isFinite(progress?.percent)) percent = progress.percent;
  else if (Number.isFinite(progress?.current) && progress?.total > 0) percent = (100 * progress.current) / progress.total;
  if (task?.state === "succeeded") percent = 100;
  if (percent === null && task?.state !== "running") percent = 0;
  return {
    percent: percent === null ? null : Math.min(100, Math.max(0, percent)),
    message: typeof progress?.message === "string" ? progress.message : "",
  };
}

function valueText(value) {
  if (typeof value === "string") return value;
  try {
    return JSON.stringify(value) ?? String(value);
  } catch {
    return String(value);
  }
}

function errorOf(error) {
  if (typeof error !== "object") return valueText(error);
  const message = typeof error.message === "string" ? error.message : valueText(error.message ?? "");
  return [error.type, message].filter(Boolean).join(": ");
}

function setText(element, text) {
  if (element.textContent !== text) element.textContent = text;
}

function setAttr(element, name, value) {
  if (element.getAttribute(name) !== value) element.setAttribute(name, value);
}

function appendText(element, text) {
  if (!text) return;
  const last = element.lastChild;
  if (last?.nodeType === 3 && last.length + text.length <= TEXT_NODE_LIMIT) last.appendData(text);
  else element.append(element.ownerDocument.createTextNode(text));
}

/** The Clipboard API where offered, else the output selected and copied the old way. */
async function copyText(host, text, box) {
  const view = host.ownerDocument?.defaultView;
  const clipboard = view?.navigator?.clipboard;
  if (typeof clipboard?.writeText === "function") {
    try {
      await clipboard.writeText(text);
      return true;
    } catch {
      // Refused (no permission, not focused): the old way may still work.
    }
  }
  const selection = view?.getSelection?.();
  const doc = host.ownerDocument;
  if (!selection || typeof doc?.execCommand !== "function") return false;
  const range = doc.createRange();
  range.selectNodeContents(box);
  selection.removeAllRanges();
  selection.addRange(range);
  try {
    return doc.execCommand("copy") === true;
  } catch {
    return false;
  } finally {
    selection.removeAllRanges();
  }
}

if (globalThis.customElements && !globalThis.customElements.get(TAG)) {
  globalThis.customElements.define(TAG, TaskstreamTask);
}
