import { test } from "node:test";
import assert from "node:assert/strict";
import { JSDOM } from "jsdom";
import {
  constraintHint,
  createKindForm,
  createLogLine,
  createOutputLogLine,
  createOutputStream,
  createTaskRow,
  escape,
  logText,
  metadataEntries,
  outputSummary,
  taskView,
  updateOutputStreamHead,
  updateTaskRow,
} from "../src/templates.js";
import { fieldsFromSchema } from "../src/schema-form.js";
import { makeTask } from "../client/tests/helpers.js";

const XSS = "<img src=x onerror=alert(1)>";
const { document } = new JSDOM("<!doctype html><body></body>").window;

function renderRow(task, context = {}) {
  const row = createTaskRow(document, task.id);
  updateTaskRow(row, taskView(task, context));
  document.body.replaceChildren(row.root);
  return row;
}

test("escape() neutralises every HTML metacharacter", () => {
  assert.equal(escape(`<a href="x" title='y'>&</a>`), "&lt;a href=&quot;x&quot; title=&#39;y&#39;&gt;&amp;&lt;/a&gt;");
  assert.equal(escape(null), "");
  assert.equal(escape(42), "42");
});

test("markup in params, results and errors is shown as text, never parsed", () => {
  const row = renderRow(
    makeTask({ kind: XSS, params: { x: XSS }, state: "succeeded", result: `<script>alert(2)</script>`, seq: 3 }),
  );
  assert.equal(row.root.querySelector("img"), null);
  assert.equal(row.root.querySelector("script"), null);
  assert.match(row.refs.params.textContent, /x = "<img src=x onerror=alert\(1\)>"/);
  assert.equal(row.refs.outcomeText.textContent, "<script>alert(2)</script>");
  assert.ok(row.root.innerHTML.includes("&lt;img src=x onerror=alert(1)&gt;"));

  const failed = renderRow(makeTask({ state: "failed", error: { type: "ValueError", message: XSS }, seq: 3 }));
  assert.equal(failed.root.querySelector("img"), null);
  assert.equal(failed.refs.outcomeText.textContent, `ValueError: ${XSS}`);
});

test("log lines show event data as text", () => {
  const line = createLogLine(document, {
    source: "event",
    key: 1,
    at: "2025-11-25T14:00:00Z",
    type: "failed",
    taskId: "0".repeat(26) + "abcdef",
    kind: "add",
    error: { type: "Boom", message: XSS },
    announce: true,
  });
  assert.equal(line.querySelector("img"), null);
  assert.match(line.textContent, /…abcdef failed: Boom: <img src=x onerror=alert\(1\)>/);
  assert.equal(line.getAttribute("aria-hidden"), null);
});

test("progress log lines are hidden from assistive tech so only state changes are announced", () => {
  const line = createLogLine(document, { source: "event", key: 2, type: "progress", progress: { percent: 40, message: "step 2" }, announce: false });
  assert.equal(line.getAttribute("aria-hidden"), "true");
  assert.equal(logText({ source: "event", type: "progress", progress: { percent: 40, message: "step 2 of 5" } }), "progress 40% step 2 of 5");
});

test("a running task shows its progress, message, elapsed time and a Cancel button", () => {
  const task = makeTask({
    kind: "long",
    state: "running",
    started_at: "2025-11-25T14:00:00.000Z",
    progress: { current: 2, total: 5, percent: 40, message: "step 2 of 5" },
    seq: 4,
  });
  const row = renderRow(task, { now: Date.parse("2025-11-25T14:00:12.000Z"), kindTitle: "Long task" });
  assert.equal(row.refs.kind.textContent, "Long task");
  assert.equal(row.refs.badge.textContent, "Running");
  assert.equal(row.refs.progress.value, 40);
  assert.equal(row.refs.percent.textContent, "40%");
  assert.equal(row.refs.progress.getAttribute("aria-valuetext"), "40%, step 2 of 5");
  assert.equal(row.refs.message.textContent, "step 2 of 5");
  assert.match(row.refs.meta.textContent, /Running for 12 s/);
  assert.equal(row.refs.cancel.hidden, false);
  assert.equal(row.refs.cancel.tagName, "BUTTON");
  assert.match(row.refs.cancel.getAttribute("aria-label"), /^Cancel Long task \(…[0-9a-f]{6}\)$/);
});

test("a running task without progress yet shows an indeterminate bar", () => {
  const row = renderRow(makeTask({ state: "running", started_at: "2025-11-25T14:00:00Z", seq: 2 }));
  assert.equal(row.refs.progress.hasAttribute("value"), false);
  assert.equal(row.refs.percent.textContent, "");
});

test("a retrying task counts down to its next try, corrected for clock skew", () => {
  const task = makeTask({
    state: "retrying",
    attempts: 2,
    started_at: "2025-11-25T14:00:00.000Z",
    retry_at: "2025-11-25T14:00:10.000Z",
    error: { type: "RuntimeError", message: "flaky" },
    seq: 6,
  });
  // This clock runs 3 s ahead of the server's: at local 14:00:09 the server is at 14:00:06.
  const view = taskView(task, { now: Date.parse("2025-11-25T14:00:09.000Z"), clockSkewMs: 3000 });
  assert.match(view.meta, /Attempt 2/);
  assert.match(view.meta, /Next try in 4 s/);
  assert.equal(view.outcomeLabel, "Last error");
  assert.equal(view.outcomeText, "RuntimeError: flaky");
});

test("a finished task shows its duration and no Cancel button", () => {
  const task = makeTask({
    state: "succeeded",
    started_at: "2025-11-25T14:00:00.000Z",
    finished_at: "2025-11-25T14:01:05.000Z",
    result: 5,
    seq: 3,
  });
  const row = renderRow(task);
  assert.match(row.refs.meta.textContent, /Took 1 min 05 s/);
  assert.equal(row.refs.outcomeText.textContent, "5");
  assert.equal(row.refs.cancel.hidden, true);
  assert.equal(row.refs.progress.value, 100);
});

test("a running task whose cancel was requested says so and disables its button", () => {
  const view = taskView(makeTask({ state: "running", cancel_requested: true, seq: 3 }));
  assert.equal(view.badge, "Cancelling");
  assert.equal(view.cancelDisabled, true);
  assert.equal(view.cancelText, "Cancelling…");
});

test("updating a row keeps its nodes: focus on Cancel survives a progress tick", () => {
  const task = makeTask({ state: "running", progress: { percent: 10 }, seq: 2 });
  const row = renderRow(task);
  const button = row.refs.cancel;
  updateTaskRow(row, taskView({ ...task, progress: { percent: 20 }, seq: 3 }));
  assert.equal(row.refs.cancel, button);
  assert.equal(row.root.querySelector("button"), button);
  assert.equal(row.refs.progress.value, 20);
});

test("the filter hides rows that do not match", () => {
  assert.equal(taskView(makeTask({ state: "succeeded" }), { filter: "active" }).hidden, true);
  assert.equal(taskView(makeTask({ state: "queued" }), { filter: "active" }).hidden, false);
  assert.equal(taskView(makeTask({ state: "queued" }), { filter: "finished" }).hidden, true);
});

test("a kind form has a labelled control per field, with schema constraints and hints", () => {
  const kind = {
    name: "long",
    title: "Long <b>task</b>",
    description: "Sleeps",
    params_schema: { properties: { seconds: { type: "integer", title: "Seconds", default: 5, minimum: 1, maximum: 60 } } },
  };
  const built = createKindForm(document, kind, fieldsFromSchema(kind.params_schema), "k0");
  document.body.replaceChildren(built.form);
  const input = document.querySelector("input[name=seconds]");
  const label = document.querySelector(`label[for="${input.id}"]`);
  assert.equal(label.textContent, "Seconds");
  assert.equal(input.type, "number");
  assert.equal(input.min, "1");
  assert.equal(input.max, "60");
  assert.equal(input.step, "1");
  assert.equal(input.value, "5");
  assert.equal(document.querySelector("h3").textContent, "Long <b>task</b>");
  assert.equal(document.querySelector("b"), null);
  const described = input.getAttribute("aria-describedby").split(" ").map((id) => document.getElementById(id));
  assert.ok(described.every(Boolean));
  assert.match(described[0].textContent, /Whole number, 1 to 60/);
  assert.equal(built.form.noValidate, true);
  assert.equal(built.submit.type, "submit");
});

test("required fields, checkboxes and selects render as native controls", () => {
  const kind = {
    name: "mixed",
    title: "Mixed",
    params_schema: {
      properties: {
        x: { type: "number" },
        on: { type: "boolean", default: true },
        mode: { enum: ["a", "b"] },
      },
      required: ["x", "mode"],
    },
  };
  const built = createKindForm(document, kind, fieldsFromSchema(kind.params_schema), "k1");
  document.body.replaceChildren(built.form);
  assert.equal(document.querySelector("input[name=x]").required, true);
  const box = document.querySelector("input[name=on]");
  assert.equal(box.type, "checkbox");
  assert.equal(box.checked, true);
  assert.equal(box.closest("label").textContent.trim(), "On");
  const select = document.querySelector("select[name=mode]");
  assert.deepEqual([...select.options].map((o) => o.textContent), ["Choose…", "a", "b"]);
  assert.equal(select.value, "");
});

test("hints join a description and bounds once, and leave out huge bounds", () => {
  assert.equal(
    constraintHint({ type: "number", minimum: -(2 ** 53), maximum: 2 ** 53 }),
    "",
  );
  assert.equal(constraintHint({ type: "integer", minimum: 1, maximum: 60 }), "Whole number, 1 to 60");
});

test("a finished task's row names its output streams and sizes; a running one does not yet", () => {
  const output = { output: { type: "text", length: 1234, truncated: true }, rows: { type: "json", length: 1, truncated: false } };
  const done = taskView(makeTask({ state: "succeeded", seq: 9, output }));
  assert.match(done.meta, /Output: output 1,234 characters \(truncated\), rows 1 item/);
  assert.doesNotMatch(taskView(makeTask({ state: "running", seq: 9, output })).meta, /Output/, "the list's stream carries no chunks: it would be stale");
  assert.equal(outputSummary({}), "");
});

test("every kind form ends with an optional, labelled tags input", () => {
  const kind = { name: "add", title: "Add", params_schema: { properties: { x: { type: "number" } } } };
  const built = createKindForm(document, kind, fieldsFromSchema(kind.params_schema), "k9");
  document.body.replaceChildren(built.form);
  const input = built.form.querySelector("input[name=__tags]");
  assert.ok(input);
  assert.equal(input.required, false);
  assert.equal(document.querySelector(`label[for="${input.id}"]`).textContent, "Tags");
  assert.match(document.getElementById(input.getAttribute("aria-describedby").split(" ")[0]).textContent, /comma separated/);
  assert.equal(built.controls.__tags.control, input);
});

test("an open row's log line and metadata are text; a stream box's head tells its size", () => {
  const line = createOutputLogLine(document, { key: 1, level: "warning", message: "<b>hot</b>", at: "2025-11-25T14:00:00Z" });
  assert.equal(line.dataset.level, "warning");
  assert.equal(line.querySelector("b"), null);
  assert.match(line.textContent, /warning <b>hot<\/b>$/);
  const pairs = metadataEntries(document, { stage: "done", words: 300, nested: { a: [1] } });
  assert.deepEqual(pairs.map((pair) => pair.textContent), ["stagedone", "words300", 'nested{"a":[1]}']);
  const box = createOutputStream(document, "t", { name: "rows", type: "json" });
  assert.equal(box.body.tagName, "OL");
  assert.equal(box.type, "json", "the view repaints a box whose stream changed type");
  updateOutputStreamHead(box, { type: "json", length: 2, truncated: true }, { ok: false });
  assert.equal(box.size.textContent, "2 items · truncated at the output limit");
  assert.equal(box.copied.textContent, "Couldn't copy");
});
