import { test } from "node:test";
import assert from "node:assert/strict";
import { setImmediate as settle } from "node:timers/promises";
import { createController } from "../src/controller.js";
import { createStore, FORM_FOCUS } from "../src/store.js";
import { ApiError } from "../client/src/index.js";
import { FakeEventSource, fakeTimers, makeEvent, makeTask, taskId } from "../client/tests/helpers.js";
import { pageClient } from "./fake-client.js";

const KINDS = [
  {
    name: "add",
    title: "Add two numbers",
    description: "",
    params_schema: { type: "object", properties: { x: { type: "number" }, y: { type: "number" } }, required: ["x", "y"] },
  },
];

const problem = (status, extra = {}) =>
  new ApiError(status, { type: status === 422 ? "validation_error" : "conflict", title: "T", status, detail: `detail ${status}`, ...extra });

function setup(overrides = {}, options = {}) {
  const store = createStore();
  const timers = fakeTimers();
  const calls = { getTask: [], submit: [], cancel: [], listRecentTasks: 0 };
  const api = {
    getSession: async () => ({ auth_required: false, principal: null }),
    listKinds: async () => KINDS,
    listRecentTasks: async () => {
      calls.listRecentTasks += 1;
      return { items: [], resumeEventId: null };
    },
    getTask: async (id) => {
      calls.getTask.push(id);
      return makeTask({ id, state: "running", seq: 5 });
    },
    submit: async (kind, params, options) => {
      calls.submit.push({ kind, params, options });
      return makeTask({ kind, params });
    },
    cancel: async (id) => {
      calls.cancel.push(id);
      return { ...store.state.tasks.get(id), state: "cancelled", seq: store.state.tasks.get(id).seq + 1 };
    },
    ...overrides,
  };
  const { client, streams } = pageClient(api, { timers });
  let keys = 0;
  const controller = createController({ client, store, timers, random: () => 1, newKey: () => `key-${++keys}`, ...options });
  return { store, timers, api, calls, streams, controller };
}

test("start loads kinds and tasks, then opens one stream resuming after the snapshot", async () => {
  const tasks = [makeTask({ id: taskId(2) }), makeTask({ id: taskId(1) })];
  const { store, streams, controller } = setup({ listRecentTasks: async () => ({ items: tasks, resumeEventId: "1764-9" }) });
  await controller.start();
  await settle();
  assert.deepEqual(store.state.kinds.map((k) => k.name), ["add"]);
  assert.deepEqual(store.state.kinds[0].fields.map((f) => f.name), ["x", "y"]);
  assert.deepEqual(store.state.order, [taskId(2), taskId(1)]);
  assert.equal(streams.length, 1);
  assert.deepEqual(streams[0].started, ["1764-9"]);
});

test("a failed first load is shown and retried; the stream waits for the snapshot", async () => {
  let fail = true;
  const { store, streams, timers, controller } = setup({
    listRecentTasks: async () => {
      if (fail) throw new ApiError(0, { type: "network_error", title: "Network error", detail: "Could not reach the server." });
      return { items: [], resumeEventId: null };
    },
  });
  await controller.start();
  assert.equal(store.state.tasksStatus.phase, "error");
  assert.match(store.state.tasksStatus.message, /Could not reach the server\. Trying again in 2 s/);
  assert.equal(streams.length, 0);
  fail = false;
  timers.advance(2000);
  await settle();
  assert.equal(store.state.tasksStatus.phase, "ready");
  assert.equal(streams.length, 1);
});

test("an event for an unknown task mid-life fetches that task once", async () => {
  const { store, streams, calls, controller } = setup();
  await controller.start();
  const { onEvent } = streams[0].handlers;
  const id = taskId(9);
  onEvent(makeEvent(id, 4, "progress", { progress: { percent: 40 } }));
  onEvent(makeEvent(id, 5, "progress", { progress: { percent: 60 } }));
  assert.deepEqual(calls.getTask, [id]);
  await settle();
  assert.equal(store.state.tasks.get(id).seq, 5);
});

test("a reset reloads the list over REST and keeps the same stream", async () => {
  const { store, streams, calls, controller } = setup();
  await controller.start();
  assert.equal(calls.listRecentTasks, 1);
  streams[0].handlers.onReset({ reason: "trimmed", last_event_id: "5-0" });
  await settle();
  assert.equal(calls.listRecentTasks, 2);
  assert.equal(streams.length, 1);
  assert.match(store.state.log.at(-1).message, /reset \(trimmed\); reloading/);
});

test("resets arriving while a reload runs lead to one more reload, not many in parallel", async () => {
  let release;
  let running = 0;
  let peak = 0;
  let count = 0;
  const { streams, controller } = setup({
    listRecentTasks: async () => {
      count += 1;
      running += 1;
      peak = Math.max(peak, running);
      if (count > 1) await new Promise((resolve) => (release = resolve));
      running -= 1;
      return { items: [], resumeEventId: null };
    },
  });
  await controller.start();
  const { onReset } = streams[0].handlers;
  onReset({});
  onReset({});
  onReset({});
  release();
  await settle();
  release();
  await settle();
  assert.equal(count, 3, "the first load, the reset's reload, then one more");
  assert.equal(peak, 1);
});

test("stream connection states reach the store", async () => {
  const { store, streams, controller } = setup();
  await controller.start();
  streams[0].handlers.onState("live");
  assert.equal(store.state.connection, "live");
  streams[0].handlers.onState("reconnecting");
  assert.equal(store.state.connection, "reconnecting");
  assert.match(store.state.log.at(-1).message, /Connection lost/);
});

test("a connection state reported again changes nothing and notes nothing", async () => {
  const { store, streams, controller } = setup();
  await controller.start();
  const { onState } = streams[0].handlers;
  for (const state of ["connecting", "live", "live", "reconnecting", "reconnecting", "live", "live"]) onState(state);
  assert.equal(store.state.connection, "live");
  assert.deepEqual(
    store.state.log.map((entry) => entry.message),
    ["Connection lost; reconnecting.", "Connection restored."],
    "the first live is no restore, and each change is noted once",
  );
});

test("client-side validation blocks the request and focuses the first invalid field", async () => {
  const { store, calls, controller } = setup();
  await controller.start();
  await controller.handlers.submit("add", { x: "", y: "abc" });
  assert.equal(calls.submit.length, 0);
  const form = store.state.forms.get("add");
  assert.deepEqual(Object.keys(form.errors), ["x", "y"]);
  assert.equal(form.focus, "x");
});

test("a valid submit posts typed params and adds the task at once", async () => {
  const { store, calls, controller } = setup();
  await controller.start();
  await controller.handlers.submit("add", { x: "2", y: "3" });
  assert.deepEqual(calls.submit[0].params, { x: 2, y: 3 });
  assert.equal(calls.submit[0].options.idempotencyKey, "key-1");
  assert.equal(store.state.tasks.size, 1);
  assert.equal(store.state.forms.get("add").submitting, false);
});

test("the server's 422 errors are shown on the matching fields, the rest at the form's top", async () => {
  const error = problem(422, {
    errors: [
      { field: "params.y", message: "Input should be less than 10", type: "less_than" },
      { field: "kind", message: "Unknown kind", type: "value_error" },
    ],
  });
  const { store, controller } = setup({ submit: async () => Promise.reject(error) });
  await controller.start();
  await controller.handlers.submit("add", { x: "1", y: "11" });
  const form = store.state.forms.get("add");
  assert.deepEqual(form.errors, { y: "Input should be less than 10" });
  assert.deepEqual(form.formErrors, ["kind: Unknown kind"]);
  assert.equal(form.focus, FORM_FOCUS);
});

test("a 422 naming no field shows its detail at the form's top", async () => {
  const { store, controller } = setup({ submit: async () => Promise.reject(problem(422, { errors: [] })) });
  await controller.start();
  await controller.handlers.submit("add", { x: "1", y: "2" });
  assert.deepEqual(store.state.forms.get("add").formErrors, ["detail 422."]);
});

test("a retry after a lost answer reuses the idempotency key; new values get a new one", async () => {
  let fail = true;
  const keys = [];
  const { controller } = setup({
    submit: async (kind, params, { idempotencyKey }) => {
      keys.push(idempotencyKey);
      if (fail) throw new ApiError(0, { type: "network_error", title: "Network error" });
      return makeTask({ kind, params });
    },
  });
  await controller.start();
  await controller.handlers.submit("add", { x: "1", y: "2" });
  fail = false;
  await controller.handlers.submit("add", { x: "1", y: "2" });
  await controller.handlers.submit("add", { x: "1", y: "2" });
  assert.deepEqual(keys, ["key-1", "key-1", "key-2"]);
});

test("a second submit while one is in flight is ignored", async () => {
  let resolve;
  const { calls, controller } = setup({
    submit: (kind, params) => {
      calls.submit.push(params);
      return new Promise((r) => (resolve = () => r(makeTask())));
    },
  });
  await controller.start();
  const first = controller.handlers.submit("add", { x: "1", y: "2" });
  await controller.handlers.submit("add", { x: "1", y: "2" });
  resolve();
  await first;
  assert.equal(calls.submit.length, 1);
});

test("editing a field clears its error as soon as it is valid", async () => {
  const { store, controller } = setup();
  await controller.start();
  controller.handlers.edit("add", "x", "abc", { commit: false });
  assert.equal(store.state.forms.get("add"), undefined, "no error while typing a first time");
  controller.handlers.edit("add", "x", "abc", { commit: true });
  assert.equal(store.state.forms.get("add").errors.x, "Enter a number.");
  controller.handlers.edit("add", "x", "4", { commit: false });
  assert.deepEqual(store.state.forms.get("add").errors, {});
});

test("cancel applies the server's answer to the task", async () => {
  const task = makeTask({ id: taskId(4), state: "queued", seq: 1 });
  const { store, calls, controller } = setup({ listRecentTasks: async () => ({ items: [task], resumeEventId: null }) });
  await controller.start();
  await controller.handlers.cancel(task.id);
  assert.deepEqual(calls.cancel, [task.id]);
  assert.equal(store.state.tasks.get(task.id).state, "cancelled");
  assert.equal(store.state.taskUi.get(task.id).cancelling, false);
});

test("a 409 on cancel is shown on the row for a while and the task is refreshed", async () => {
  const task = makeTask({ id: taskId(5), state: "running", seq: 3 });
  const { store, calls, timers, controller } = setup({
    listRecentTasks: async () => ({ items: [task], resumeEventId: null }),
    cancel: async () => Promise.reject(problem(409)),
  });
  await controller.start();
  await controller.handlers.cancel(task.id);
  const ui = store.state.taskUi.get(task.id);
  assert.equal(ui.cancelling, false);
  assert.match(ui.note, /Already finished/);
  assert.deepEqual(calls.getTask, [task.id]);
  timers.advance(8000);
  assert.equal(store.state.taskUi.get(task.id).note, "");
});

// Open rows (tests/open-rows.test.js tests them): how the controller wires them in; tags.

/** Lets the watches' requests and their answers run to their end. */
async function drain() {
  for (let i = 0; i < 10; i += 1) await settle();
}

function outputSetup({ tasks = [], answers = {}, options = {}, ...overrides } = {}) {
  const requested = [];
  const context = setup(
    {
      listRecentTasks: async ({ tag } = {}) => {
        requested.push(tag);
        return { items: tasks.filter((task) => !tag || task.tags?.includes(tag)), resumeEventId: "1-0" };
      },
      getOutput: async (id) => {
        context.calls.getOutput = [...(context.calls.getOutput ?? []), id];
        const answer = answers[id];
        if (answer instanceof Error) throw answer;
        return typeof answer === "function" ? answer() : (answer ?? { task_id: id, last_event_id: "1764079200000-2", streams: {} });
      },
      getTask: async (id) => {
        context.calls.getTask.push(id);
        return context.store.state.tasks.get(id) ?? Promise.reject(problem(404));
      },
      ...overrides,
    },
    options,
  );
  const taskStreams = () => FakeEventSource.instances;
  return { ...context, requested, taskStreams };
}

const running = (n, seq, extra = {}) => makeTask({ id: taskId(n), state: "running", seq, last_event_id: `1764079200000-${seq}`, ...extra });

test("the view's row actions reach the open rows, whose streams are the task's own", async () => {
  const task = running(1, 4);
  const copied = [];
  const { store, timers, streams, calls, controller, taskStreams } = outputSetup({
    tasks: [task],
    answers: { [task.id]: { task_id: task.id, last_event_id: "1764079200000-4", streams: { output: { type: "text", length: 6, text: "Hello " } } } },
    options: { clipboard: { copy: async (text) => copied.push(text) > 0 } },
  });
  await controller.start();
  controller.handlers.toggleOutput(task.id);
  assert.equal(store.state.details.get(task.id).status, "loading");
  await drain();
  assert.deepEqual(calls.getOutput, [task.id]);
  assert.deepEqual(calls.getTask, [], "the listed task is as new as the output: not asked for again");
  const [own] = taskStreams();
  assert.equal(own.url, `/api/tasks/${task.id}/events?last_event_id=1764079200000-4`);
  assert.equal(streams[0].handlers.types, undefined, "the list's stream keeps the server's default types");
  assert.equal(store.state.details.get(task.id).status, "live");

  await controller.handlers.copyOutput(task.id, "output");
  assert.deepEqual(copied, ["Hello "], "the controller's clipboard");
  own.fail(2);
  timers.advance(1000);
  await drain();
  assert.deepEqual(calls.getTask, [task.id], "a row's stream that gave up reads its task before reconnecting");
  assert.equal(taskStreams().length, 2);

  controller.handlers.resumeOutput(task.id);
  await drain();
  assert.equal(taskStreams()[1].closed, true);
  assert.equal(taskStreams().length, 3);
  controller.handlers.toggleOutput(task.id);
  assert.equal(taskStreams()[2].closed, true, "closing the row closes its stream");
  assert.equal(store.state.details.has(task.id), false);
});

test("a row's stream event after a gap loads the row's output again", async () => {
  const task = makeTask({ id: taskId(1), state: "queued", seq: 1, last_event_id: "1764079200000-1" });
  const { calls, controller, taskStreams } = outputSetup({ tasks: [task] });
  await controller.start();
  controller.handlers.toggleOutput(task.id);
  await drain();
  taskStreams()[0].emit("output", makeEvent(task.id, 3, "output", { output: { stream: "output", offset: 0, text: "x" } }));
  await drain();
  assert.deepEqual(calls.getOutput, [task.id, task.id]);
  assert.equal(taskStreams()[0].closed, true);
  assert.equal(taskStreams().length, 2);
});

test("maxLiveOutputs bounds the rows that follow live", async () => {
  const tasks = [1, 2].map((n) => running(n, 2));
  const { store, controller, taskStreams } = outputSetup({ tasks, options: { maxLiveOutputs: 1 } });
  await controller.start();
  for (const task of tasks) {
    controller.handlers.toggleOutput(task.id);
    await drain();
  }
  assert.equal(taskStreams()[0].closed, true);
  assert.match(store.state.details.get(tasks[0].id).message, /at most 1 rows/);
});

test("a live row follows its own stream to the end, whatever the list's brings first", async () => {
  const task = running(1, 3);
  const { store, streams, controller, taskStreams } = outputSetup({
    tasks: [task],
    answers: { [task.id]: { task_id: task.id, last_event_id: "1764079200000-3", streams: { output: { type: "text", length: 3, text: "all" } } } },
  });
  await controller.start();
  controller.handlers.toggleOutput(task.id);
  await drain();
  const [own] = taskStreams();
  streams[0].handlers.onEvent(makeEvent(task.id, 4, "succeeded", { result: 1 }));
  assert.equal(store.state.tasks.get(task.id).state, "succeeded");
  assert.equal(own.closed, false, "the row's own stream brings the rest");
  own.emit("succeeded", makeEvent(task.id, 4, "succeeded", { result: 1 }));
  assert.equal(own.closed, true);
  assert.equal(store.state.details.get(task.id).status, "complete");
});

test("a 401 loading a row's output ends the session and every row's stream", async () => {
  const other = running(2, 2);
  const late = running(3, 2);
  const { store, controller, taskStreams } = outputSetup({
    tasks: [other, late],
    answers: { [late.id]: problem(401) },
    getSession: async () => ({ auth_required: true, principal: "alice" }),
  });
  await controller.start();
  controller.handlers.toggleOutput(other.id);
  await drain();
  const [own] = taskStreams();
  controller.handlers.toggleOutput(late.id);
  await drain();
  assert.equal(store.state.session.phase, "signed-out");
  assert.equal(own.closed, true, "the session's end closes every row's stream");
  assert.equal(store.state.details.size, 0);
});

test("stopping the controller closes every row's stream", async () => {
  const task = running(1, 2);
  const { streams, controller, taskStreams } = outputSetup({ tasks: [task] });
  await controller.start();
  controller.handlers.toggleOutput(task.id);
  await drain();
  controller.stop();
  assert.equal(streams[0].stopped, true);
  assert.equal(taskStreams()[0].closed, true);
});

test("a tag filter reloads the list for that tag and reopens the list's stream with it", async () => {
  const tagged = makeTask({ id: taskId(2), tags: ["user:42"] });
  const plain = makeTask({ id: taskId(1) });
  const { store, streams, requested, controller } = outputSetup({ tasks: [tagged, plain] });
  await controller.start();
  assert.equal(store.state.tasks.size, 2);
  controller.handlers.filterTag(" user:42 ");
  assert.equal(streams[0].stopped, true);
  assert.equal(store.state.tasksStatus.phase, "loading");
  await settle();
  assert.deepEqual(requested, [undefined, "user:42"]);
  assert.deepEqual(store.state.order, [tagged.id], "tasks without the tag are dropped");
  assert.equal(streams.length, 2);
  assert.equal(streams[1].handlers.tag, "user:42", "the list's stream is asked for that tag only");

  controller.handlers.filterTag("not a tag!");
  assert.match(store.state.tagError, /not a tag/);
  assert.equal(streams.length, 2, "an invalid tag changes nothing");
  controller.handlers.filterTag("");
  assert.equal(store.state.tagError, "");
  await settle();
  assert.deepEqual(requested, [undefined, "user:42", undefined]);
  assert.equal(store.state.tasks.size, 2);
  assert.equal(streams[2].handlers.tag, undefined);
});

test("a submission sends its tags, refuses bad ones on the tags field, and maps the server's", async () => {
  const { store, calls, controller } = setup();
  await controller.start();
  await controller.handlers.submit("add", { x: "2", y: "3", __tags: "user:42, report, user:42" });
  assert.deepEqual(calls.submit[0].options.tags, ["user:42", "report"]);
  await controller.handlers.submit("add", { x: "2", y: "3", __tags: "no spaces allowed" });
  assert.equal(calls.submit.length, 1);
  const form = store.state.forms.get("add");
  assert.match(form.errors.__tags, /not a tag/);
  assert.equal(form.focus, "__tags");
  controller.handlers.edit("add", "__tags", "fine", { commit: true });
  assert.equal(store.state.forms.get("add").errors.__tags, undefined, "fixed as it is typed");
});

test("a 422 on the tags shows on the tags field", async () => {
  const error = problem(422, { errors: [{ field: "tags.0", message: "String should match pattern", type: "string_pattern_mismatch" }] });
  const { store, controller } = setup({ submit: async () => Promise.reject(error) });
  await controller.start();
  await controller.handlers.submit("add", { x: "1", y: "2", __tags: "ok" });
  const form = store.state.forms.get("add");
  assert.deepEqual(form.errors, { __tags: "String should match pattern" });
  assert.deepEqual(form.formErrors, []);
  assert.equal(form.focus, "__tags");
});

test("a reload that drops a task with an open row closes that row's stream", async () => {
  const tagged = running(2, 2, { tags: ["t"] });
  const plain = running(1, 2);
  const { store, controller, taskStreams } = outputSetup({ tasks: [tagged, plain] });
  await controller.start();
  controller.handlers.toggleOutput(plain.id);
  await drain();
  const [own] = taskStreams();
  controller.handlers.filterTag("t");
  await drain();
  assert.equal(store.state.details.has(plain.id), false);
  assert.equal(own.closed, true);
});
