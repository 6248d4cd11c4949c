import { test } from "node:test";
import assert from "node:assert/strict";
import { readFileSync } from "node:fs";
import { JSDOM } from "jsdom";
import { createView } from "../src/view.js";
import { createStore } from "../src/store.js";
import { fieldsFromSchema } from "../src/schema-form.js";
import { applyEventToOutput, loadOutput } from "../client/src/index.js";
import { makeEvent, makeTask, taskId } from "../client/tests/helpers.js";

const html = readFileSync(new URL("../index.html", import.meta.url), "utf8").replace(/<script[^>]*><\/script>/g, "");

function setup() {
  const dom = new JSDOM(html);
  const { document } = dom.window;
  const frames = [];
  const win = { requestAnimationFrame: (fn) => frames.push(fn) };
  const store = createStore({ maxLog: 3 });
  let paints = 0;
  const view = createView({
    document,
    window: win,
    readState: () => {
      paints += 1;
      return store.flush();
    },
    now: () => Date.parse("2025-11-25T14:00:10Z"),
  });
  store.subscribe(view.requestRender);
  const frame = () => frames.splice(0).forEach((fn) => fn());
  return { dom, document, store, view, frame, frames, paints: () => paints };
}

const rowIds = (document) => [...document.querySelectorAll("#tasks > li")].map((li) => li.dataset.id);

test("many changes between frames are painted once", () => {
  const { store, frame, frames, paints } = setup();
  const id = taskId(1);
  store.applyEvent(makeEvent(id, 1, "queued"));
  store.applyEvent(makeEvent(id, 2, "started"));
  for (let seq = 3; seq < 50; seq += 1) assert.equal(store.applyEvent(makeEvent(id, seq, "progress", { progress: { percent: seq } })).status, "applied");
  assert.equal(frames.length, 1);
  frame();
  assert.equal(paints(), 1);
});

test("rows are keyed by id, newest first, and only changed rows are touched", () => {
  const { document, store, frame } = setup();
  store.loadSnapshot([makeTask({ id: taskId(1), state: "running", seq: 2 }), makeTask({ id: taskId(3), state: "running", seq: 2 })]);
  frame();
  assert.deepEqual(rowIds(document), [taskId(3), taskId(1)]);
  const [newer, older] = document.querySelectorAll("#tasks > li");
  const olderText = older.querySelector(".task__message");

  const observer = new document.defaultView.MutationObserver(() => {});
  observer.observe(document.getElementById("tasks"), { subtree: true, childList: true, characterData: true, attributes: true });

  store.applyEvent(makeEvent(taskId(3), 3, "progress", { progress: { percent: 50, message: "half" } }));
  frame();
  const mutations = observer.takeRecords(); // collected synchronously, before delivery
  assert.ok(mutations.length > 0);
  assert.ok(mutations.every((m) => newer.contains(m.target)), "only the changed row was touched");
  assert.equal(newer.querySelector(".task__message").textContent, "half");
  assert.equal(older.querySelector(".task__message"), olderText);

  store.applyEvent(makeEvent(taskId(2), 1, "queued"));
  frame();
  assert.deepEqual(rowIds(document), [taskId(3), taskId(2), taskId(1)]);
  assert.equal(document.querySelectorAll("#tasks > li")[0], newer, "existing rows are kept, not rebuilt");
});

test("server text is rendered as text in the page", () => {
  const { document, store, frame } = setup();
  store.loadSnapshot([makeTask({ params: { x: "<img src=x onerror=alert(1)>" } })]);
  frame();
  assert.equal(document.querySelector("#tasks img"), null);
  assert.match(document.querySelector(".task__params").textContent, /<img src=x onerror=alert\(1\)>/);
});

test("the updates log adds new lines on top, stays bounded and is a polite live region", () => {
  const { document, store, frame } = setup();
  const log = document.getElementById("log");
  assert.equal(log.getAttribute("aria-live"), "polite");
  const id = taskId(1);
  store.applyEvent(makeEvent(id, 1, "queued"));
  store.applyEvent(makeEvent(id, 2, "started"));
  frame();
  const oldest = log.lastElementChild;
  assert.equal(log.children.length, 2);
  assert.match(oldest.textContent, /queued/);
  store.applyEvent(makeEvent(id, 3, "progress", { progress: { percent: 10 } }));
  store.applyEvent(makeEvent(id, 4, "succeeded", { result: 7 }));
  frame();
  assert.equal(log.children.length, 3, "bounded by maxLog");
  assert.ok(!log.contains(oldest), "the oldest line went first");
  assert.match(log.firstElementChild.textContent, /succeeded: 7/, "newest first");
  assert.equal(log.children[1].getAttribute("aria-hidden"), "true", "the progress tick is not announced");
});

test("the connection indicator shows its state in words", () => {
  const { document, store, frame } = setup();
  store.setConnection("reconnecting");
  frame();
  assert.equal(document.getElementById("connection-text").textContent, "Reconnecting…");
  assert.equal(document.getElementById("connection").dataset.state, "reconnecting");
  store.setConnection("offline");
  frame();
  assert.equal(document.getElementById("connection-text").textContent, "Offline");
});

test("forms come from the kinds; submit hands raw values over; errors show on fields and move focus", () => {
  const { document, store, view, frame } = setup();
  const schema = { properties: { x: { type: "number", title: "X" }, on: { type: "boolean", title: "On" } }, required: ["x"] };
  store.setKinds([{ name: "add", title: "Add", description: "Adds", params_schema: schema, fields: fieldsFromSchema(schema) }]);
  frame();
  const submitted = [];
  view.bind({ submit: (kind, raw) => submitted.push([kind, raw]) });
  const form = document.querySelector("form[data-kind=add]");
  form.querySelector("input[name=x]").value = "12";
  form.querySelector("input[name=on]").checked = true;
  form.dispatchEvent(new document.defaultView.Event("submit", { bubbles: true, cancelable: true }));
  assert.deepEqual(submitted, [["add", { x: "12", on: true, __tags: "" }]]);

  store.setForm("add", { errors: { x: "Must be at most 10." }, focus: "x" });
  frame();
  const input = form.querySelector("input[name=x]");
  assert.equal(input.getAttribute("aria-invalid"), "true");
  const error = document.getElementById(input.getAttribute("aria-describedby").split(" ").at(-1));
  assert.equal(error.textContent, "Must be at most 10.");
  assert.equal(error.hidden, false);
  assert.equal(document.activeElement, input);

  store.setForm("add", { submitting: true });
  frame();
  assert.equal(form.querySelector("button[type=submit]").disabled, true);
});

test("a kinds load error offers a retry button", () => {
  const { document, store, view, frame } = setup();
  let retried = 0;
  view.bind({ retryKinds: () => (retried += 1) });
  store.setKindsStatus("error", "Network error.");
  frame();
  assert.match(document.getElementById("kinds").textContent, /Couldn't load task kinds: Network error\./);
  document.querySelector("[data-action=retry-kinds]").click();
  assert.equal(retried, 1);
});

test("cancel buttons and the filter call their handlers", () => {
  const { document, store, view, frame } = setup();
  const cancelled = [];
  const filters = [];
  view.bind({ cancel: (id) => cancelled.push(id), filter: (value) => filters.push(value) });
  store.loadSnapshot([makeTask({ id: taskId(1), state: "running", seq: 2 }), makeTask({ id: taskId(2), state: "succeeded", seq: 3 })]);
  frame();
  document.querySelector(`li[data-id="${taskId(1)}"] button[data-action=cancel]`).click();
  assert.deepEqual(cancelled, [taskId(1)]);

  const active = document.querySelector("input[name=filter][value=active]");
  active.checked = true;
  active.dispatchEvent(new document.defaultView.Event("change", { bubbles: true }));
  assert.deepEqual(filters, ["active"]);
  store.setFilter("active");
  frame();
  assert.equal(document.querySelector(`li[data-id="${taskId(2)}"]`).hidden, true);
  assert.equal(document.querySelector(`li[data-id="${taskId(1)}"]`).hidden, false);
});

test("an error loading tasks shows the notice with its message", () => {
  const { document, store, frame } = setup();
  store.setTasksStatus("error", "Couldn't load tasks: Network error.");
  frame();
  assert.equal(document.getElementById("notice").hidden, false);
  assert.equal(document.getElementById("notice-text").textContent, "Couldn't load tasks: Network error.");
  store.setTasksStatus("ready");
  frame();
  assert.equal(document.getElementById("notice").hidden, true);
  assert.equal(document.getElementById("tasks-empty").textContent, "No tasks yet. Start one with a form.");
});

test("when a task finishes under a focused Cancel button, focus moves to its row, not the page", () => {
  const { document, store, frame } = setup();
  const id = taskId(1);
  store.loadSnapshot([makeTask({ id, state: "running", seq: 2 })]);
  frame();
  const row = document.querySelector(`li[data-id="${id}"]`);
  const button = row.querySelector("button[data-action=cancel]");
  button.focus();
  store.upsertTask({ ...store.state.tasks.get(id), cancel_requested: true });
  frame();
  assert.equal(button.getAttribute("aria-disabled"), "true");
  assert.equal(document.activeElement, button, "a pending cancel keeps focus on the button");
  store.applyEvent(makeEvent(id, 3, "cancelled"));
  frame();
  assert.equal(button.hidden, true);
  assert.equal(document.activeElement, row);
});

test("before the session is known the app shows as before, and no account", () => {
  const { document } = setup();
  assert.equal(document.getElementById("signin").hidden, true);
  assert.equal(document.getElementById("app").hidden, false);
  assert.equal(document.getElementById("account").hidden, true);
});

test("the sign-in panel replaces the app; submit hands the key over and clears the input", () => {
  const { document, store, view, frame } = setup();
  const keys = [];
  view.bind({ signIn: (key) => keys.push(key) });
  store.setSession({ phase: "signed-out", required: true, focus: "key" });
  frame();
  const input = document.getElementById("api-key");
  assert.equal(document.getElementById("signin").hidden, false);
  assert.equal(document.getElementById("app").hidden, true);
  assert.equal(document.getElementById("connection").hidden, true);
  assert.equal(document.getElementById("skip-link").hidden, true);
  assert.equal(document.activeElement, input, "the key input has focus");
  assert.equal(input.type, "password");
  assert.equal(input.labels[0].textContent, "API key");
  assert.equal(input.getAttribute("autocomplete"), "off");

  input.value = "secret-key";
  document.getElementById("signin-form").dispatchEvent(new document.defaultView.Event("submit", { bubbles: true, cancelable: true }));
  assert.deepEqual(keys, ["secret-key"]);
  assert.equal(input.value, "", "the input is cleared on submit");

  store.setSession({ pending: "sign-in" });
  frame();
  const submit = document.getElementById("signin-submit");
  assert.equal(submit.disabled, true);
  assert.equal(submit.textContent, "Signing in…");
  assert.equal(document.getElementById("signin-form").getAttribute("aria-busy"), "true");
});

test("a refused key shows its error tied to the input; a session-ended note is read with it", () => {
  const { document, store, frame } = setup();
  store.setSession({ phase: "signed-out", required: true, note: "Your session has ended; sign in again." });
  frame();
  const input = document.getElementById("api-key");
  const described = input.getAttribute("aria-describedby").split(" ").map((id) => document.getElementById(id));
  assert.equal(document.getElementById("signin-note").textContent, "Your session has ended; sign in again.");
  assert.ok(described.includes(document.getElementById("signin-note")));
  assert.equal(document.getElementById("api-key-error").hidden, true);

  store.setSession({ pending: null, error: "The API key is not valid.", focus: "key" });
  frame();
  const error = document.getElementById("api-key-error");
  assert.equal(error.hidden, false);
  assert.equal(error.textContent, "The API key is not valid.");
  assert.equal(error.getAttribute("role"), "alert");
  assert.ok(described.includes(error));
  assert.equal(input.getAttribute("aria-invalid"), "true");
  assert.equal(document.getElementById("signin-submit").disabled, false);

  store.setSession({ error: "" });
  frame();
  assert.equal(input.hasAttribute("aria-invalid"), false);
});

test("signed in, the top bar names the principal as text and offers Sign out", () => {
  const { document, store, view, frame } = setup();
  let signOuts = 0;
  view.bind({ signOut: () => (signOuts += 1) });
  store.setSession({ phase: "signed-in", required: true, principal: "<b>alice</b>", focus: "app" });
  frame();
  assert.equal(document.getElementById("account").hidden, false);
  assert.equal(document.getElementById("principal").textContent, "<b>alice</b>");
  assert.equal(document.querySelector("#account b"), null, "server text stays text");
  assert.match(document.querySelector(".account__who").textContent, /Signed in as <b>alice<\/b>/);
  assert.equal(document.getElementById("signin").hidden, true);
  assert.equal(document.getElementById("app").hidden, false);
  assert.equal(document.activeElement, document.getElementById("forms-heading"), "focus moves into the app");

  document.getElementById("sign-out").click();
  assert.equal(signOuts, 1);
  store.setSession({ pending: "sign-out" });
  frame();
  assert.equal(document.getElementById("sign-out").getAttribute("aria-disabled"), "true");
  assert.equal(document.getElementById("sign-out").textContent, "Signing out…");

  store.setSession({ phase: "open", required: false, principal: null, pending: null });
  frame();
  assert.equal(document.getElementById("account").hidden, true, "no account when the API needs no key");
});

test("a reset removes every row and log line, and later lines still appear", () => {
  const { document, store, frame } = setup();
  store.loadSnapshot([makeTask({ id: taskId(1), state: "running", seq: 2 })]);
  store.addNote("before");
  frame();
  assert.equal(rowIds(document).length, 1);
  store.reset();
  frame();
  assert.deepEqual(rowIds(document), []);
  assert.equal(document.getElementById("log").children.length, 0);
  store.addNote("after");
  store.loadSnapshot([makeTask({ id: taskId(2), state: "queued", seq: 1 })]);
  frame();
  assert.deepEqual(rowIds(document), [taskId(2)]);
  assert.match(document.getElementById("log").textContent, /after/);
});

// Open rows: output appended in place, logs, metadata; tags and the tag filter.

function openRow(store, frame, task = makeTask({ id: taskId(1), state: "running", seq: 2 })) {
  store.loadSnapshot([task]);
  store.openDetail(task.id);
  loadOutput(store.state.details.get(task.id).output, { task_id: task.id, last_event_id: "1764079200000-2", streams: {} });
  store.setDetail(task.id, { status: "live", connection: "live" });
  frame();
  return task;
}

/** What the row's watch does with an event of the task's stream: the output applied, the row marked. */
function toRow(store, id, event) {
  applyEventToOutput(store.state.details.get(id).output, event);
  store.touchDetail(id);
}

const chunk = (id, seq, offset, text, stream = "output") =>
  makeEvent(id, seq, "output", { id: `1764079200000-${seq}`, output: { stream, offset, text } });

test("the row's toggle is a button with aria-expanded that opens and closes its output", () => {
  const { document, store, view, frame } = setup();
  const toggled = [];
  view.bind({ toggleOutput: (id) => toggled.push(id) });
  const task = makeTask({ id: taskId(1), state: "running", seq: 2 });
  store.loadSnapshot([task]);
  frame();
  const row = document.querySelector(`li[data-id="${task.id}"]`);
  const toggle = row.querySelector("button[data-action=toggle-output]");
  assert.equal(toggle.getAttribute("aria-expanded"), "false");
  assert.match(toggle.getAttribute("aria-label"), /^Output of add \(…[0-9a-f]{6}\)$/);
  toggle.click(); // a button: Enter and Space click it too
  assert.deepEqual(toggled, [task.id]);
  store.openDetail(task.id);
  frame();
  assert.equal(toggle.getAttribute("aria-expanded"), "true");
  const region = document.getElementById(toggle.getAttribute("aria-controls"));
  assert.ok(region && row.contains(region));
  assert.equal(region.textContent.includes("Loading output…"), true);
  store.closeDetail(task.id);
  frame();
  assert.equal(toggle.getAttribute("aria-expanded"), "false");
  assert.equal(document.getElementById(toggle.getAttribute("aria-controls")), null);
});

test("output text is appended, never repainted: earlier text nodes stay as they are", () => {
  const { document, store, frame } = setup();
  const task = openRow(store, frame);
  const apply = (event) => {
    store.applyEvent(event);
    toRow(store, task.id, event);
  };
  apply(chunk(task.id, 3, 0, "Hello "));
  frame();
  const pre = document.querySelector(`li[data-id="${task.id}"] .output__text`);
  assert.equal(pre.textContent, "Hello ");
  const first = pre.firstChild;

  const observer = new document.defaultView.MutationObserver(() => {});
  observer.observe(document.getElementById("tasks"), { subtree: true, childList: true, characterData: true, characterDataOldValue: true });
  apply(chunk(task.id, 4, 6, "wörld 🌍"));
  apply(chunk(task.id, 5, 13, "!"));
  apply(chunk(task.id, 5, 13, "!")); // a repeat shows nothing twice
  frame();
  const mutations = observer.takeRecords().filter((m) => pre.contains(m.target) || m.target === pre);
  assert.equal(pre.textContent, "Hello wörld 🌍!");
  assert.equal(pre.firstChild, first, "the same text node");
  for (const m of mutations) {
    if (m.type === "characterData") assert.ok(m.target.data.startsWith(m.oldValue), "text only grows at its end");
    else assert.equal(m.removedNodes.length, 0, "nothing removed");
  }
  assert.match(document.querySelector(".output__size").textContent, /^14 characters$/);
});

test("a long answer is a few bounded text nodes, not one per chunk", () => {
  const { document, store, frame } = setup();
  const task = openRow(store, frame);
  let offset = 0;
  for (let seq = 3; seq < 403; seq += 1) {
    const word = "word ";
    toRow(store, task.id, chunk(task.id, seq, offset, word));
    offset += word.length;
    if (seq % 7 === 0) frame();
  }
  frame();
  const pre = document.querySelector(".output__text");
  assert.equal(pre.textContent, "word ".repeat(400));
  assert.equal(pre.childNodes.length, 1, "2000 characters fit one node");
});

test("a new attempt paints its stream afresh; JSON items are appended as list items", () => {
  const { document, store, frame } = setup();
  const task = openRow(store, frame);
  toRow(store, task.id, chunk(task.id, 3, 0, "first try"));
  toRow(store, task.id, makeEvent(task.id, 4, "output", { id: "1764079200000-4", output: { stream: "rows", offset: 0, items: [1, { a: "<b>x</b>" }] } }));
  frame();
  const rows = document.querySelector('.output__stream[data-stream="rows"] .output__items');
  assert.deepEqual([...rows.children].map((li) => li.textContent), ["1", '{"a":"<b>x</b>"}']);
  assert.equal(rows.querySelector("b"), null, "items are text");
  toRow(store, task.id, makeEvent(task.id, 5, "started", { id: "1764079200000-5", attempt: 2 }));
  toRow(store, task.id, chunk(task.id, 6, 0, "second"));
  frame();
  assert.equal(document.querySelector(".output__text").textContent, "second");
  assert.equal(document.querySelector('.output__stream[data-stream="rows"]'), null);
  assert.match(document.querySelector(".output__logs").textContent, /Attempt 2/);
});

test("the output follows its end unless the reader scrolled up", () => {
  const { document, store, frame } = setup();
  const task = openRow(store, frame);
  toRow(store, task.id, chunk(task.id, 3, 0, "a"));
  frame();
  const pre = document.querySelector(".output__text");
  let height = 500;
  Object.defineProperty(pre, "scrollHeight", { get: () => height });
  Object.defineProperty(pre, "clientHeight", { get: () => 100 });
  let top = 0;
  Object.defineProperty(pre, "scrollTop", { get: () => top, set: (value) => (top = value) });
  toRow(store, task.id, chunk(task.id, 4, 1, "b"));
  frame();
  assert.equal(top, 500, "at the end, it follows");
  top = 100; // the reader scrolls up
  pre.dispatchEvent(new document.defaultView.Event("scroll"));
  height = 600;
  toRow(store, task.id, chunk(task.id, 5, 2, "c"));
  frame();
  assert.equal(top, 100, "left where the reader is");
  top = 500; // back down to the end
  pre.dispatchEvent(new document.defaultView.Event("scroll"));
  height = 700;
  toRow(store, task.id, chunk(task.id, 6, 3, "d"));
  frame();
  assert.equal(top, 700);
});

test("log lines show level and message as text, bounded like the store; metadata as a key/value list", () => {
  const { document, store, frame } = setup();
  const task = openRow(store, frame);
  store.applyEvent(makeEvent(task.id, 3, "metadata", { metadata: { stage: "writing", words: 12 } }));
  for (let seq = 4; seq < 8; seq += 1) {
    toRow(store, task.id, makeEvent(task.id, seq, "log", { id: `1764079200000-${seq}`, log: { level: seq === 5 ? "error" : "info", message: `<i>line ${seq}</i>` } }));
  }
  frame();
  const lines = [...document.querySelectorAll(".output__logs > li")];
  assert.equal(lines.length, 4);
  assert.equal(lines[1].dataset.level, "error");
  assert.match(lines[1].textContent, /error <i>line 5<\/i>/);
  assert.equal(document.querySelector(".output__logs i"), null);
  const pairs = [...document.querySelectorAll(".output__metadata .output__pair")].map((pair) => pair.textContent);
  assert.deepEqual(pairs, ["stagewriting", "words12"]);
  store.applyEvent(makeEvent(task.id, 8, "metadata", { metadata: { stage: "done" } }));
  frame();
  assert.deepEqual([...document.querySelectorAll(".output__metadata dt")].map((dt) => dt.textContent), ["stage"]);
});

test("a paused row offers Resume; copy buttons name their stream and say when they copied", () => {
  const { document, store, view, frame } = setup();
  const calls = [];
  view.bind({ resumeOutput: (id) => calls.push(["resume", id]), copyOutput: (id, name) => calls.push(["copy", id, name]) });
  const task = openRow(store, frame);
  toRow(store, task.id, chunk(task.id, 3, 0, "text"));
  store.setDetail(task.id, { status: "paused", message: "Live output paused: at most 5 rows follow live output at once." });
  frame();
  const resume = document.querySelector("button[data-action=resume-output]");
  assert.equal(resume.hidden, false);
  assert.equal(resume.textContent, "Resume");
  resume.click();
  const copy = document.querySelector("button[data-action=copy-output]");
  assert.equal(copy.getAttribute("aria-label"), "Copy the output stream");
  copy.click();
  assert.deepEqual(calls, [["resume", task.id], ["copy", task.id, "output"]]);
  store.setDetail(task.id, { copied: { stream: "output", ok: true } });
  frame();
  assert.equal(document.querySelector(".output__copied").textContent, "Copied");
});

test("tags show on each row and filter the list when pressed; the filter form hands its text over", () => {
  const { document, store, view, frame } = setup();
  const tags = [];
  view.bind({ filterTag: (tag) => tags.push(tag) });
  store.loadSnapshot([makeTask({ id: taskId(1), tags: ["user:42", "<b>r</b>"] }), makeTask({ id: taskId(2) })]);
  frame();
  const chips = [...document.querySelectorAll(`li[data-id="${taskId(1)}"] .task__tags button`)];
  assert.deepEqual(chips.map((chip) => chip.textContent), ["user:42", "<b>r</b>"]);
  assert.equal(document.querySelector(`li[data-id="${taskId(2)}"] .task__tags`).hidden, true);
  chips[0].click();
  const input = document.getElementById("tag-filter-input");
  input.value = "report";
  document.getElementById("tag-filter").dispatchEvent(new document.defaultView.Event("submit", { bubbles: true, cancelable: true }));
  input.value = "";
  input.dispatchEvent(new document.defaultView.Event("input", { bubbles: true }));
  assert.deepEqual(tags, ["user:42", "report", ""]);
  assert.deepEqual([...document.querySelectorAll("#tag-options option")].map((o) => o.value), ["<b>r</b>", "user:42"]);

  store.setTag("user:42");
  frame();
  assert.equal(input.value, "user:42");
  assert.equal(document.querySelector(`li[data-id="${taskId(2)}"]`).hidden, true);
  store.setTagError("bad tag");
  frame();
  assert.equal(document.getElementById("tag-filter-error").textContent, "bad tag");
  assert.equal(input.getAttribute("aria-invalid"), "true");
  store.setTag("nothing");
  frame();
  assert.equal(document.getElementById("tasks-empty").textContent, "No tasks tagged nothing.");
});

test("many output events between frames repaint one row, not the list", () => {
  const { document, store, frame } = setup();
  const tasks = Array.from({ length: 100 }, (_, n) => makeTask({ id: taskId(n + 1), state: "running", seq: 2 }));
  store.loadSnapshot(tasks);
  const open = tasks[50];
  store.openDetail(open.id);
  frame();
  const observer = new document.defaultView.MutationObserver(() => {});
  observer.observe(document.getElementById("tasks"), { subtree: true, childList: true, characterData: true, attributes: true });
  let offset = 0;
  for (let seq = 3; seq < 23; seq += 1) {
    const event = chunk(open.id, seq, offset, "tok ");
    store.applyEvent(event);
    toRow(store, open.id, event);
    offset += 4;
  }
  frame();
  const row = document.querySelector(`li[data-id="${open.id}"]`);
  const touched = observer.takeRecords();
  assert.ok(touched.length > 0);
  assert.ok(touched.every((m) => row.contains(m.target)), "only the open row changed");
  assert.equal(row.querySelector(".output__text").textContent, "tok ".repeat(20));
});
