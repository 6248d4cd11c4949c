import { test } from "node:test";
import assert from "node:assert/strict";
import { applyEventToTask } from "../client/src/index.js";
import { createStore, matchesFilter } from "../src/store.js";
import { makeEvent, makeTask, taskId } from "../client/tests/helpers.js";

const ids = (store) => store.state.order;

test("tasks are ordered newest first by id, whatever order they arrive in", () => {
  const store = createStore();
  store.loadSnapshot([makeTask({ id: taskId(2) }), makeTask({ id: taskId(9) })]);
  store.applyEvent(makeEvent(taskId(5), 1, "queued"));
  store.applyEvent(makeEvent(taskId(0x10), 1, "queued"));
  assert.deepEqual(ids(store), [taskId(0x10), taskId(9), taskId(5), taskId(2)]);
});

test("ids compare as strings, so a longer hex prefix does not win by length", () => {
  const store = createStore();
  store.loadSnapshot([makeTask({ id: "0193f0000000000000000000000000aa" }), makeTask({ id: "0193f1000000000000000000000000a0" })]);
  assert.deepEqual(ids(store), ["0193f1000000000000000000000000a0", "0193f0000000000000000000000000aa"]);
});

test("an event whose seq is not above the task's is dropped, once applied it is not shown twice", () => {
  const store = createStore();
  const id = taskId(1);
  assert.equal(store.applyEvent(makeEvent(id, 1, "queued")).status, "applied");
  assert.equal(store.applyEvent(makeEvent(id, 2, "started")).status, "applied");
  const progress = makeEvent(id, 3, "progress", { progress: { current: 1, total: 3, percent: 33.3, message: "one" } });
  assert.equal(store.applyEvent(progress).status, "applied");
  const logLength = store.state.log.length;

  // A reconnect replays seq 2 and 3: nothing changes, nothing is logged again.
  assert.equal(store.applyEvent(makeEvent(id, 2, "started")).status, "duplicate");
  assert.equal(store.applyEvent({ ...progress, progress: { percent: 0 } }).status, "duplicate");
  assert.equal(store.state.tasks.get(id).progress.percent, 33.3);
  assert.equal(store.state.tasks.get(id).state, "running");
  assert.equal(store.state.log.length, logLength);
});

test("a REST copy older than what the stream already applied does not roll the task back", () => {
  const store = createStore();
  const task = makeTask({ state: "running", seq: 4 });
  store.upsertTask(task);
  store.applyEvent(makeEvent(task.id, 5, "succeeded", { result: 42 }));
  assert.equal(store.upsertTask({ ...task, seq: 4, state: "running" }), false);
  assert.equal(store.state.tasks.get(task.id).state, "succeeded");
  assert.equal(store.state.tasks.get(task.id).result, 42);
});

test("a queued event for an unknown task adds it with the params it carries", () => {
  const store = createStore();
  const outcome = store.applyEvent(makeEvent(taskId(7), 1, "queued", { params: { seconds: 9 } }));
  assert.deepEqual(outcome, { status: "applied" });
  const task = store.state.tasks.get(taskId(7));
  assert.deepEqual(task.params, { seconds: 9 });
  assert.equal(task.state, "queued");
  assert.equal(task.seq, 1);
});

test("a mid-life event for an unknown task asks for one REST fetch and is applied after it", () => {
  const store = createStore();
  const id = taskId(3);
  const first = store.applyEvent(makeEvent(id, 3, "progress", { progress: { percent: 50 } }));
  assert.deepEqual(first, { status: "buffered", fetch: id });
  const second = store.applyEvent(makeEvent(id, 4, "progress", { progress: { percent: 75 } }));
  assert.equal(second.status, "buffered");
  assert.equal(second.fetch, undefined, "the fetch is requested once");
  assert.equal(store.state.tasks.has(id), false);

  // The REST copy was taken after seq 3: the buffered seq 4 is applied on top, seq 3 is not.
  store.upsertTask(makeTask({ id, state: "running", seq: 3, progress: { percent: 50 } }));
  const task = store.state.tasks.get(id);
  assert.equal(task.seq, 4);
  assert.equal(task.progress.percent, 75);
  assert.equal(store.isFetching(id), false);
});

test("after a failed fetch a later event for the task may ask again", () => {
  const store = createStore();
  const id = taskId(3);
  assert.equal(store.applyEvent(makeEvent(id, 2, "started")).fetch, id);
  store.fetchFailed(id);
  assert.equal(store.applyEvent(makeEvent(id, 3, "progress")).fetch, id);
});

test("a seq gap on a known task applies the event and asks for a fresh copy", () => {
  const store = createStore();
  const task = makeTask({ state: "queued", seq: 1 });
  store.upsertTask(task);
  const outcome = store.applyEvent(makeEvent(task.id, 3, "started"));
  assert.deepEqual(outcome, { status: "applied", fetch: task.id });
  assert.equal(store.state.tasks.get(task.id).state, "running");
});

test("a gap between events of a running task is the output log's: no fetch until it ends", () => {
  const store = createStore();
  const task = makeTask({ state: "running", seq: 2 });
  store.upsertTask(task);
  // seq 3 and 4 were output chunks and log lines, which the list's stream does not carry.
  const outcome = store.applyEvent(makeEvent(task.id, 5, "progress", { progress: { percent: 60 } }));
  assert.deepEqual(outcome, { status: "applied" });
  assert.equal(store.state.tasks.get(task.id).progress.percent, 60);
  assert.deepEqual(store.applyEvent(makeEvent(task.id, 9, "metadata", { metadata: { words: 3 } })), { status: "applied" });
  // The final event, after more of them: one fresh copy brings the whole output summary.
  assert.deepEqual(store.applyEvent(makeEvent(task.id, 12, "succeeded", { result: 1 })), { status: "applied", fetch: task.id });
});

test("after a gap, an event the task's stale state does not allow waits for the fresh copy", () => {
  const store = createStore();
  const task = makeTask({ state: "queued", seq: 1 });
  store.upsertTask(task);
  // seq 2 (started) was missed: progress cannot follow "queued", but it may follow what was missed.
  const outcome = store.applyEvent(makeEvent(task.id, 3, "progress", { progress: { percent: 60 } }));
  assert.deepEqual(outcome, { status: "buffered", fetch: task.id });
  assert.equal(store.state.tasks.get(task.id).state, "queued");
  store.upsertTask({ ...task, state: "running", seq: 2, started_at: "2025-11-25T14:00:01.000Z" });
  const fresh = store.state.tasks.get(task.id);
  assert.equal(fresh.seq, 3);
  assert.equal(fresh.state, "running");
  assert.equal(fresh.progress.percent, 60);
});

test("an event the task's state does not allow, with no gap, is ignored: the log would refuse it", () => {
  const store = createStore();
  const task = makeTask({ state: "succeeded", seq: 3, result: 1 });
  store.upsertTask(task);
  store.flush();
  const before = store.state.tasks.get(task.id);
  assert.deepEqual(store.applyEvent(makeEvent(task.id, 4, "progress", { progress: { percent: 10 } })), { status: "ignored" });
  assert.deepEqual(store.applyEvent(makeEvent(task.id, 4, "started")), { status: "ignored" });
  assert.equal(store.state.tasks.get(task.id), before, "the very same task");
  assert.equal(store.state.tasks.get(task.id).state, "succeeded");
  assert.equal(store.state.tasks.get(task.id).seq, 3);
  const marks = store.flush();
  assert.equal(marks.dirty.size, 0, "nothing to repaint");
  assert.equal(store.state.log.length, 0, "nothing logged");
});

test("an event of a type the table does not know is ignored", () => {
  const store = createStore();
  const task = makeTask({ state: "running", seq: 2 });
  store.upsertTask(task);
  assert.deepEqual(store.applyEvent(makeEvent(task.id, 3, "paused", { state: "paused" })), { status: "ignored" });
  assert.deepEqual(store.applyEvent(makeEvent(taskId(8), 1, "paused")), { status: "ignored" }, "nor held for an unknown task");
  assert.equal(store.state.tasks.get(task.id).state, "running");
  assert.equal(store.isFetching(taskId(8)), false);
});

test("the state comes from the table, not from the event's own state field", () => {
  const store = createStore();
  store.applyEvent(makeEvent(taskId(1), 1, "queued"));
  store.applyEvent(makeEvent(taskId(1), 2, "started", { state: "queued" }));
  assert.equal(store.state.tasks.get(taskId(1)).state, "running");
});

test("a cancel answer at the same seq still records cancel_requested", () => {
  const store = createStore();
  const task = makeTask({ state: "running", seq: 3 });
  store.upsertTask(task);
  assert.equal(store.upsertTask({ ...task, cancel_requested: true }), true);
  assert.equal(store.state.tasks.get(task.id).cancel_requested, true);
});

test("a resync drops tasks the server no longer lists but keeps those created meanwhile", () => {
  const store = createStore();
  const kept = makeTask({ id: taskId(1) });
  const gone = makeTask({ id: taskId(2) });
  store.loadSnapshot([kept, gone]);

  store.beginResync();
  assert.equal(store.state.tasksStatus.phase, "syncing");
  store.applyEvent(makeEvent(taskId(3), 1, "queued")); // arrives while the reload is in flight
  store.loadSnapshot([{ ...kept, state: "succeeded", seq: 3 }]);

  assert.deepEqual(ids(store), [taskId(3), taskId(1)]);
  assert.equal(store.state.tasks.get(taskId(1)).state, "succeeded");
  assert.equal(store.state.tasksStatus.phase, "ready");
});

test("a first load never drops tasks it does not list", () => {
  const store = createStore();
  store.applyEvent(makeEvent(taskId(5), 1, "queued"));
  store.loadSnapshot([makeTask({ id: taskId(1) })]);
  assert.deepEqual(ids(store), [taskId(5), taskId(1)]);
});

test("flush hands over exactly the tasks and aspects changed since the last flush", () => {
  const store = createStore();
  const a = makeTask({ id: taskId(1) });
  const b = makeTask({ id: taskId(2) });
  store.loadSnapshot([a, b]);
  store.flush();

  store.applyEvent(makeEvent(a.id, 2, "started"));
  store.applyEvent(makeEvent(a.id, 3, "progress"));
  const marks = store.flush();
  assert.deepEqual([...marks.dirty], [a.id]);
  assert.ok(marks.aspects.has("tasks"));
  assert.ok(marks.aspects.has("log"));
  assert.ok(!marks.aspects.has("order"), "an update of a known task does not reorder the list");
  assert.equal(store.flush().dirty.size, 0);
});

test("subscribers hear every change so the view can schedule a frame", () => {
  const store = createStore();
  let calls = 0;
  store.subscribe(() => (calls += 1));
  store.applyEvent(makeEvent(taskId(1), 1, "queued"));
  store.setConnection("live");
  store.setConnection("live");
  assert.ok(calls >= 2);
  const before = calls;
  store.setConnection("live");
  assert.equal(calls, before, "no notification when nothing changed");
});

test("the updates log keeps the last maxLog lines and marks progress ticks as not announced", () => {
  const store = createStore({ maxLog: 5 });
  const id = taskId(1);
  store.applyEvent(makeEvent(id, 1, "queued"));
  store.applyEvent(makeEvent(id, 2, "started"));
  for (let seq = 3; seq < 10; seq += 1) store.applyEvent(makeEvent(id, seq, "progress", { progress: { percent: seq * 10 } }));
  store.applyEvent(makeEvent(id, 10, "succeeded", { result: 1 }));
  assert.equal(store.state.log.length, 5);
  assert.deepEqual(
    store.state.log.map((entry) => entry.type),
    ["progress", "progress", "progress", "progress", "succeeded"],
  );
  assert.deepEqual(
    store.state.log.map((entry) => entry.announce),
    [false, false, false, false, true],
  );
  const keys = store.state.log.map((entry) => entry.key);
  assert.deepEqual(keys, [...keys].sort((x, y) => x - y), "keys grow so the view can append only new lines");
});

test("past maxTasks the oldest finished tasks are evicted, active ones kept", () => {
  const store = createStore({ maxTasks: 3 });
  store.loadSnapshot([
    makeTask({ id: taskId(1), state: "running", seq: 2 }),
    makeTask({ id: taskId(2), state: "succeeded", seq: 3 }),
    makeTask({ id: taskId(3), state: "failed", seq: 3 }),
  ]);
  store.applyEvent(makeEvent(taskId(4), 1, "queued"));
  assert.deepEqual(ids(store), [taskId(4), taskId(3), taskId(1)]);
});

test("tick marks only tasks that show a running clock", () => {
  const store = createStore();
  store.loadSnapshot([
    makeTask({ id: taskId(1), state: "running" }),
    makeTask({ id: taskId(2), state: "retrying" }),
    makeTask({ id: taskId(3), state: "succeeded" }),
    makeTask({ id: taskId(4), state: "queued" }),
  ]);
  store.flush();
  store.tick();
  assert.deepEqual([...store.flush().dirty].sort(), [taskId(1), taskId(2)]);
});

test("malformed events are ignored", () => {
  const store = createStore();
  assert.equal(store.applyEvent(null).status, "ignored");
  assert.equal(store.applyEvent({ task_id: "x", type: "queued" }).status, "ignored");
  assert.equal(store.state.tasks.size, 0);
});

test("the clock skew estimate uses the fastest delivery seen", () => {
  const store = createStore();
  const at = Date.parse("2025-11-25T14:00:01.000Z");
  store.applyEvent(makeEvent(taskId(1), 1, "queued"), at + 5000); // a replay, delivered late
  store.applyEvent(makeEvent(taskId(1), 2, "started"), at + 2050);
  store.applyEvent(makeEvent(taskId(1), 3, "progress"), at + 9000);
  assert.equal(store.state.clockSkewMs, 2050);
});

test("form state: setting a focus target bumps the focus token once per request", () => {
  const store = createStore();
  store.setForm("add", { errors: { x: "Required" }, focus: "x" });
  store.setForm("add", { submitting: true });
  assert.equal(store.state.forms.get("add").focusToken, 1);
  store.setForm("add", { focus: "y" });
  assert.equal(store.state.forms.get("add").focusToken, 2);
});

test("applyEventToTask follows a task through a retry", () => {
  let task = applyEventToTask(undefined, makeEvent("t", 1, "queued", { params: { failure_rate: 1 } }));
  assert.equal(task.id, "t");
  assert.equal(task.attempts, 0);
  task = applyEventToTask(task, makeEvent("t", 2, "started", { at: "2025-11-25T14:00:02.000Z", worker: "w1" }));
  task = applyEventToTask(task, makeEvent("t", 3, "progress", { progress: { percent: 50 } }));
  task = applyEventToTask(
    task,
    makeEvent("t", 4, "retrying", { retry_at: "2025-11-25T14:00:10.000Z", error: { type: "RuntimeError", message: "boom" } }),
  );
  assert.equal(task.state, "retrying");
  assert.equal(task.retry_at, "2025-11-25T14:00:10.000Z");
  assert.equal(task.error.message, "boom");
  task = applyEventToTask(task, makeEvent("t", 5, "started", { attempt: 2, at: "2025-11-25T14:00:10.000Z", worker: "w2" }));
  assert.equal(task.attempts, 2);
  assert.equal(task.retry_at, null);
  assert.equal(task.error, null, "a new attempt no longer shows the last one's error");
  assert.equal(task.worker, "w2");
  assert.equal(task.progress, null, "a new attempt starts its progress afresh");
  assert.equal(task.started_at, "2025-11-25T14:00:02.000Z", "the duration counts from the first start");
  task = applyEventToTask(task, makeEvent("t", 6, "succeeded", { attempt: 2, result: { ok: true }, at: "2025-11-25T14:00:12.000Z" }));
  assert.equal(task.state, "succeeded");
  assert.deepEqual(task.result, { ok: true });
  assert.equal(task.error, null);
  assert.equal(task.finished_at, "2025-11-25T14:00:12.000Z");
  assert.deepEqual(task.params, { failure_rate: 1 });
  assert.equal(task.last_event_id, "1764079200000-6");
});

test("applyEventToTask returns the task itself for an event that may not come next", () => {
  const queued = applyEventToTask(undefined, makeEvent("t", 1, "queued"));
  assert.equal(applyEventToTask(undefined, makeEvent("t", 2, "started")), undefined, "no task to start");
  assert.equal(applyEventToTask(queued, makeEvent("t", 2, "queued")), queued, "queued twice");
  assert.equal(applyEventToTask(queued, makeEvent("t", 2, "progress")), queued, "progress before a start");
  assert.equal(applyEventToTask(queued, makeEvent("t", 1, "started")), queued, "a seq not above the task's");
  assert.equal(applyEventToTask(queued, makeEvent("t", 2, "rebooted")), queued, "an unknown type");
});

test("a cancel while waiting to retry clears the error and the retry time", () => {
  let task = applyEventToTask(undefined, makeEvent("t", 1, "queued"));
  task = applyEventToTask(task, makeEvent("t", 2, "started"));
  task = applyEventToTask(task, makeEvent("t", 3, "retrying", { error: { type: "E", message: "m" }, retry_at: "2025-11-25T14:00:09.000Z" }));
  task = applyEventToTask(task, makeEvent("t", 4, "cancelled", { at: "2025-11-25T14:00:05.000Z" }));
  assert.equal(task.state, "cancelled");
  assert.equal(task.error, null);
  assert.equal(task.retry_at, null);
  assert.equal(task.finished_at, "2025-11-25T14:00:05.000Z");
});

test("reset forgets tasks, kinds, forms, log and pending fetches, and marks every aspect", () => {
  const store = createStore();
  store.setKinds([{ name: "add" }]);
  store.loadSnapshot([makeTask({ id: taskId(1), state: "running", seq: 2 })]);
  store.setForm("add", { errors: { x: "bad" } });
  store.setTaskUi(taskId(1), { note: "hi" });
  store.setFilter("active");
  const fetch = store.applyEvent(makeEvent(taskId(7), 3, "progress")).fetch;
  assert.equal(fetch, taskId(7));
  store.setSession({ phase: "signed-in", required: true, principal: "alice" });
  store.flush();

  store.reset();
  const { state, aspects } = store.flush();
  assert.equal(state.tasks.size, 0);
  assert.deepEqual(state.order, []);
  assert.deepEqual(state.kinds, []);
  assert.equal(state.kindsStatus.phase, "loading");
  assert.equal(state.tasksStatus.phase, "loading");
  assert.equal(state.forms.size, 0);
  assert.equal(state.taskUi.size, 0);
  assert.deepEqual(state.log, []);
  assert.equal(state.connection, "connecting");
  assert.equal(store.isFetching(taskId(7)), false);
  assert.equal(state.filter, "active", "a display preference, not data: kept");
  assert.equal(state.session.principal, "alice", "the session is the controller's to change");
  for (const aspect of ["kinds", "forms", "status", "log", "connection", "order"]) assert.ok(aspects.has(aspect), aspect);

  store.addNote("after");
  assert.equal(state.log.length, 1);
  assert.ok(state.log[0].key > 1, "log keys keep counting after a reset, so the view sees new lines");
});

test("session state: a focus target bumps the focus token once per request", () => {
  const store = createStore();
  assert.equal(store.state.session.phase, "checking");
  store.setSession({ phase: "signed-out", required: true, focus: "key" });
  store.setSession({ error: "The API key is not valid." });
  assert.equal(store.state.session.focusToken, 1);
  store.setSession({ error: "Enter your API key.", focus: "key" });
  assert.equal(store.state.session.focusToken, 2);
  assert.ok(store.flush().aspects.has("session"));
});

// Tags, metadata, output: fields of the task, folded from the table; an open row's output.

const chunkEvent = (id, seq, offset, text) => makeEvent(id, seq, "output", { output: { stream: "output", offset, text } });

function runningTask(store, overrides = {}) {
  const task = makeTask({ state: "running", seq: 2, attempts: 1, ...overrides });
  store.upsertTask(task);
  return task;
}

test("a task's tags, metadata and output summary come from REST and default to none", () => {
  const store = createStore();
  store.upsertTask(makeTask({ id: taskId(1), tags: ["user:42", "report"], metadata: { stage: "x" }, output: { output: { type: "text", length: 3, truncated: false } } }));
  store.upsertTask(makeTask({ id: taskId(2) }));
  const [tagged, plain] = [store.state.tasks.get(taskId(1)), store.state.tasks.get(taskId(2))];
  assert.deepEqual(tagged.tags, ["user:42", "report"]);
  assert.deepEqual(tagged.metadata, { stage: "x" });
  assert.equal(tagged.output.output.length, 3);
  assert.deepEqual([plain.tags, plain.metadata, plain.output], [[], null, {}]);
});

test("queued copies the tags; output extends the summary; metadata replaces the metadata", () => {
  const store = createStore();
  const id = taskId(1);
  store.applyEvent(makeEvent(id, 1, "queued", { tags: ["a", "b"] }));
  store.applyEvent(makeEvent(id, 2, "started"));
  store.applyEvent(chunkEvent(id, 3, 0, "Héllo 🌍"));
  store.applyEvent(makeEvent(id, 4, "metadata", { metadata: { stage: "writing", words: 1 } }));
  store.applyEvent(makeEvent(id, 5, "log", { log: { level: "info", message: "half way" } }));
  store.applyEvent(makeEvent(id, 6, "metadata", { metadata: { stage: "done" } }));
  const task = store.state.tasks.get(id);
  assert.deepEqual(task.tags, ["a", "b"]);
  assert.deepEqual(task.output, { output: { type: "text", length: 7, truncated: false } });
  assert.deepEqual(task.metadata, { stage: "done" }, "the whole object, replaced");
  assert.equal(task.state, "running");
  assert.equal(task.seq, 6);
});

test("a new attempt's started clears the metadata and the output summary", () => {
  const store = createStore();
  const task = runningTask(store, { metadata: { stage: "one" }, output: { output: { type: "text", length: 9, truncated: false } } });
  store.applyEvent(makeEvent(task.id, 3, "retrying", { retry_at: "2025-11-25T14:00:09Z", error: { type: "E", message: "boom" } }));
  store.applyEvent(makeEvent(task.id, 4, "started", { attempt: 2 }));
  const after = store.state.tasks.get(task.id);
  assert.equal(after.metadata, null);
  assert.deepEqual(after.output, {});
});

test("output chunks, log lines and metadata stay out of the updates log; lifecycle events do not", () => {
  const store = createStore();
  const task = runningTask(store);
  store.applyEvent(chunkEvent(task.id, 3, 0, "hi"));
  store.applyEvent(makeEvent(task.id, 4, "log", { log: { level: "info", message: "x" } }));
  store.applyEvent(makeEvent(task.id, 5, "metadata", { metadata: { a: 1 } }));
  store.applyEvent(makeEvent(task.id, 6, "progress", { progress: { percent: 5 } }));
  assert.deepEqual(
    store.state.log.map((entry) => entry.type),
    ["progress"],
  );
});

test("an open row: opened empty and loading, repainted when its watch changes it, closed and forgotten", () => {
  const store = createStore();
  const task = runningTask(store);
  store.flush();
  store.openDetail(task.id);
  const detail = store.state.details.get(task.id);
  assert.equal(detail.status, "loading");
  assert.equal(detail.output.streams.size, 0, "an empty output until a watch fills it");
  assert.deepEqual([...store.flush().dirty], [task.id], "the row repaints");
  detail.output.streams.set("output", { name: "output", type: "text", length: 5, truncated: false, text: "hello", items: [] });
  store.touchDetail(task.id);
  assert.deepEqual([...store.flush().dirty], [task.id], "a change the watch made repaints the row");
  store.touchDetail(taskId(999));
  assert.equal(store.flush().dirty.size, 0, "no row, nothing to repaint");
  store.setDetail(task.id, { status: "live", connection: "live" });
  assert.equal(store.state.details.get(task.id).status, "live");
  assert.equal(store.state.details.get(task.id).output, detail.output, "the output object stays the row's");
  store.closeDetail(task.id);
  assert.equal(store.state.details.has(task.id), false);
  store.openDetail(taskId(999));
  assert.equal(store.state.details.has(taskId(999)), false, "no row for an unknown task");
});

test("a removed task takes its open row along; a reset forgets every row", () => {
  const store = createStore();
  const task = runningTask(store);
  store.openDetail(task.id);
  store.beginResync();
  store.loadSnapshot([]);
  assert.equal(store.state.details.has(task.id), false);
  const again = runningTask(store);
  store.openDetail(again.id);
  store.reset();
  assert.equal(store.state.details.size, 0);
});

test("the tag filter keeps only tagged tasks in view, and survives a reset", () => {
  const store = createStore();
  const tagged = makeTask({ tags: ["user:42"] });
  const plain = makeTask();
  store.loadSnapshot([tagged, plain]);
  store.flush();
  store.setTag("user:42");
  const marks = store.flush();
  assert.ok(marks.aspects.has("filter") && marks.aspects.has("tag"));
  assert.equal(matchesFilter("all", store.state.tasks.get(tagged.id), "user:42"), true);
  assert.equal(matchesFilter("all", store.state.tasks.get(plain.id), "user:42"), false);
  assert.equal(matchesFilter("all", { state: "queued", tags: null }, "x"), false);
  store.reset();
  assert.equal(store.state.tag, "user:42");
  store.setTagError("bad");
  assert.equal(store.state.tagError, "bad");
});
