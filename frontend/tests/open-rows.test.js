import { test } from "node:test";
import assert from "node:assert/strict";
import { setImmediate as settle } from "node:timers/promises";
import { createOpenRows } from "../src/open-rows.js";
import { createStore } from "../src/store.js";
import { ApiError, createApi } from "../src/api.js";
import { fakeTimers, makeEvent, makeTask, taskId } from "./helpers.js";

const urls = createApi({ baseUrl: "", fetch: async () => new Response("{}") });
const problem = (status) => new ApiError(status, { type: "http_error", title: "T", status, detail: `detail ${status}` });

/**
 * Open rows over a real store holding `tasks`. `answers[id]`: the `/output` answer (an object,
 * an Error to throw, or a function returning either or a promise). The collaborators the
 * controller would give record their calls; `endSession()` moves the epoch on.
 */
function setup({ tasks = [], answers = {}, ...options } = {}) {
  const store = createStore();
  store.loadSnapshot(tasks);
  const timers = fakeTimers();
  const calls = { getOutput: [], lostSession: [], fetchTask: [], verifySession: 0 };
  const api = {
    getOutput: async (id) => {
      calls.getOutput.push(id);
      const answer = answers[id];
      if (answer instanceof Error) throw answer;
      return typeof answer === "function" ? answer() : (answer ?? { task_id: id, last_event_id: "1764079200000-2", streams: {} });
    },
    taskEventsUrl: urls.taskEventsUrl,
  };
  const streams = [];
  const openStream = (handlers) => {
    const stream = { handlers, started: [], start: (id) => stream.started.push(id), stop: () => (stream.stopped = true) };
    streams.push(stream);
    return stream;
  };
  let epoch = 0;
  const rows = createOpenRows({
    api,
    store,
    openStream,
    timers,
    epoch: () => epoch,
    lostSession: (error) => {
      calls.lostSession.push(error);
      return error?.status === 401;
    },
    fetchTask: (id) => calls.fetchTask.push(id),
    verifySession: () => (calls.verifySession += 1),
    ...options,
  });
  return { store, timers, calls, streams, rows, endSession: () => (epoch += 1) };
}

const outputEvent = (id, seq, offset, text) =>
  makeEvent(id, seq, "output", { id: `1764079200000-${seq}`, output: { stream: "output", offset, text } });

/** What the controller does with an event of the list's stream. */
function listEvent(store, rows, event) {
  store.applyEvent(event);
  rows.listEvent(event);
}

test("opening a row loads its output, then follows the task's stream after the answer's last event", async () => {
  const task = makeTask({ id: taskId(1), state: "running", seq: 4 });
  const { store, calls, streams, rows } = setup({
    tasks: [task],
    answers: { [task.id]: { task_id: task.id, last_event_id: "1764079200000-4", streams: { output: { type: "text", length: 6, text: "Hello " } } } },
  });
  rows.toggle(task.id);
  assert.equal(store.state.details.get(task.id).status, "loading");
  await settle();
  assert.deepEqual(calls.getOutput, [task.id]);
  const [own] = streams;
  assert.deepEqual(own.started, ["1764079200000-4"]);
  assert.equal(own.handlers.url("1764079200000-4"), `/api/tasks/${task.id}/events?last_event_id=1764079200000-4`);
  assert.equal(typeof own.handlers.onSnapshot, "function");
  assert.equal(store.state.details.get(task.id).status, "live");

  own.handlers.onEvent(outputEvent(task.id, 5, 6, "world"));
  own.handlers.onEvent(outputEvent(task.id, 5, 6, "world"));
  const output = store.state.details.get(task.id).output;
  assert.equal(output.streams.get("output").text, "Hello world");
  assert.equal(store.state.tasks.get(task.id).seq, 5, "the task's own events fold into the task too");
  assert.equal(store.state.log.length, 0, "output is no update to log");

  rows.toggle(task.id);
  assert.equal(own.stopped, true, "closing the row closes its stream");
  assert.equal(store.state.details.has(task.id), false);
});

test("a task the store does not have opens no row", async () => {
  const { store, calls, rows } = setup();
  rows.toggle(taskId(7));
  await settle();
  assert.equal(store.state.details.size, 0);
  assert.deepEqual(calls.getOutput, []);
  assert.equal(rows.resume(taskId(7)), false, "nor resumes one");
});

test("a chunk past the length refetches the output and follows on from the new answer", async () => {
  const task = makeTask({ id: taskId(1), state: "running", seq: 2 });
  let answer = { task_id: task.id, last_event_id: "1764079200000-2", streams: {} };
  const { store, calls, streams, rows } = setup({ tasks: [task], answers: { [task.id]: () => answer } });
  rows.toggle(task.id);
  await settle();
  const [first] = streams;
  first.handlers.onEvent(outputEvent(task.id, 3, 0, "abc"));
  answer = { task_id: task.id, last_event_id: "1764079200000-6", streams: { output: { type: "text", length: 9, text: "abcdefghi" } } };
  first.handlers.onEvent(outputEvent(task.id, 6, 7, "hi")); // 3..5 went missing
  assert.equal(first.stopped, true);
  await settle();
  assert.deepEqual(calls.getOutput, [task.id, task.id]);
  const [, second] = streams;
  assert.deepEqual(second.started, ["1764079200000-6"]);
  assert.equal(store.state.details.get(task.id).output.streams.get("output").text, "abcdefghi");
  first.handlers.onEvent(outputEvent(task.id, 7, 9, "late"));
  assert.equal(store.state.details.get(task.id).output.streams.get("output").text, "abcdefghi", "the old stream is not heard");
});

test("gaps that a refetch does not cure stop the row following, with a way to try again", async () => {
  const task = makeTask({ id: taskId(1), state: "running", seq: 2 });
  const { store, streams, rows } = setup({ tasks: [task] });
  rows.toggle(task.id);
  await settle();
  for (let i = 0; i < 4; i += 1) {
    streams.at(-1).handlers.onEvent(outputEvent(task.id, 10 + i, 50, "x"));
    await settle();
  }
  const detail = store.state.details.get(task.id);
  assert.equal(detail.status, "error");
  assert.match(detail.message, /could not be followed/);
  assert.equal(streams.length, 4, "the first stream and three after refetches, then it stops");

  rows.resume(task.id); // "Try again"
  await settle();
  assert.equal(streams.length, 5);
  assert.equal(store.state.details.get(task.id).status, "live");
});

test("the row's stream closes once the task's final event is in: the row is complete", async () => {
  const task = makeTask({ id: taskId(1), state: "running", seq: 2 });
  const { store, streams, rows } = setup({ tasks: [task] });
  rows.toggle(task.id);
  await settle();
  const [own] = streams;
  // The list's stream brings the end before the row's stream has brought the last chunk.
  listEvent(store, rows, makeEvent(task.id, 4, "succeeded", { result: 1 }));
  assert.equal(own.stopped, undefined, "the last chunk is still to come");
  own.handlers.onEvent(outputEvent(task.id, 3, 0, "all"));
  own.handlers.onEvent(makeEvent(task.id, 4, "succeeded", { result: 1 }));
  assert.equal(own.stopped, true);
  assert.equal(store.state.details.get(task.id).status, "complete");
  assert.equal(store.state.details.get(task.id).output.streams.get("output").text, "all");
});

test("the list's final event settles a live row whose output already reaches it", async () => {
  const task = makeTask({ id: taskId(1), state: "running", seq: 3 });
  const { store, streams, rows } = setup({
    tasks: [task],
    answers: { [task.id]: { task_id: task.id, last_event_id: "1764079200000-4", streams: { output: { type: "text", length: 3, text: "all" } } } },
  });
  rows.toggle(task.id);
  await settle();
  const [own] = streams;
  assert.equal(store.state.details.get(task.id).status, "live", "the task is not final yet as far as the page knows");
  listEvent(store, rows, makeEvent(task.id, 4, "succeeded", { result: 1 }));
  assert.equal(own.stopped, true);
  assert.equal(store.state.details.get(task.id).status, "complete");
});

test("a task that ends while its row loads settles on the answer, opening no stream", async () => {
  const task = makeTask({ id: taskId(1), state: "running", seq: 3 });
  let release;
  const { store, streams, rows } = setup({
    tasks: [task],
    answers: { [task.id]: () => new Promise((resolve) => (release = resolve)) },
  });
  rows.toggle(task.id);
  await settle();
  listEvent(store, rows, makeEvent(task.id, 4, "succeeded", { result: 1 }));
  assert.equal(store.state.details.get(task.id).status, "loading", "its answer decides");
  release({ task_id: task.id, last_event_id: "1764079200000-4", streams: {} });
  await settle();
  assert.equal(store.state.details.get(task.id).status, "complete");
  assert.equal(streams.length, 0);
});

test("a finished task's row loads its output and opens no stream", async () => {
  const task = makeTask({ id: taskId(1), state: "succeeded", seq: 5, last_event_id: "1764079200000-5" });
  const { store, streams, rows } = setup({
    tasks: [task],
    answers: { [task.id]: { task_id: task.id, last_event_id: "1764079200000-5", streams: { output: { type: "text", length: 2, text: "ok" } } } },
  });
  rows.toggle(task.id);
  await settle();
  assert.equal(streams.length, 0);
  assert.equal(store.state.details.get(task.id).status, "complete");
});

test("at most maxLiveOutputs rows follow live: opening one more pauses the oldest; Resume takes it back", async () => {
  const tasks = [1, 2, 3, 4, 5].map((n) => makeTask({ id: taskId(n), state: "running", seq: 2 }));
  const { store, streams, rows } = setup({ tasks });
  for (const task of tasks) {
    rows.toggle(task.id);
    await settle();
  }
  const owns = [...streams];
  assert.equal(owns.length, 5);
  assert.equal(owns[0].stopped, true, "the oldest's stream closed");
  assert.equal(owns.slice(1).filter((own) => own.stopped).length, 0);
  const oldest = store.state.details.get(tasks[0].id);
  assert.equal(oldest.status, "paused");
  assert.match(oldest.message, /at most 4 rows/, "the list's stream and 4 rows: 5 of HTTP/1.1's 6 connections");
  assert.ok(store.state.details.has(tasks[0].id), "its row stays open, with what it had");

  rows.resume(tasks[0].id);
  await settle();
  assert.equal(streams.length, 6);
  assert.equal(owns[1].stopped, true, "now the next oldest pauses");
  assert.equal(store.state.details.get(tasks[0].id).status, "live");
});

test("a snapshot on the row's stream replaces the output and the task", async () => {
  const task = makeTask({ id: taskId(1), state: "running", seq: 2 });
  const { store, streams, rows } = setup({ tasks: [task] });
  rows.toggle(task.id);
  await settle();
  streams[0].handlers.onSnapshot({
    task: { ...task, seq: 30, last_event_id: "1764079200000-30", metadata: { words: 9 } },
    output: { task_id: task.id, last_event_id: "1764079200000-30", streams: { output: { type: "text", length: 4, text: "abcd" } } },
  });
  assert.equal(store.state.tasks.get(task.id).seq, 30);
  assert.equal(store.state.details.get(task.id).output.streams.get("output").text, "abcd");
  streams[0].handlers.onEvent(outputEvent(task.id, 31, 4, "e"));
  assert.equal(store.state.details.get(task.id).output.streams.get("output").text, "abcde");
});

test("a reset on the row's stream reloads the output and follows on from the new answer", async () => {
  const task = makeTask({ id: taskId(1), state: "running", seq: 2 });
  let answer = { task_id: task.id, last_event_id: "1764079200000-2", streams: {} };
  const { store, calls, streams, rows } = setup({ tasks: [task], answers: { [task.id]: () => answer } });
  rows.toggle(task.id);
  await settle();
  const [first] = streams;
  answer = { task_id: task.id, last_event_id: "1764079200000-9", streams: { output: { type: "text", length: 2, text: "hi" } } };
  first.handlers.onReset({ reason: "trimmed" });
  assert.equal(first.stopped, true);
  assert.equal(store.state.details.get(task.id).status, "loading");
  await settle();
  assert.deepEqual(calls.getOutput, [task.id, task.id]);
  assert.deepEqual(streams[1].started, ["1764079200000-9"]);
  assert.equal(store.state.details.get(task.id).output.streams.get("output").text, "hi");
  first.handlers.onReset({});
  await settle();
  assert.equal(calls.getOutput.length, 2, "a closed stream's reset is not heard");
});

test("the row's stream reports its connection to the row; a closed one's reports are not heard", async () => {
  const task = makeTask({ id: taskId(1), state: "running", seq: 2 });
  const { store, streams, rows } = setup({ tasks: [task] });
  rows.toggle(task.id);
  await settle();
  assert.equal(store.state.details.get(task.id).connection, "connecting");
  streams[0].handlers.onState("live");
  assert.equal(store.state.details.get(task.id).connection, "live");
  rows.resume(task.id);
  streams[0].handlers.onState("reconnecting");
  assert.equal(store.state.details.get(task.id).connection, null);
});

test("the row's stream asks for a task the store wants, and for the session when it gives up", async () => {
  const task = makeTask({ id: taskId(1), state: "queued", seq: 1 });
  const { calls, streams, rows } = setup({ tasks: [task] });
  rows.toggle(task.id);
  await settle();
  streams[0].handlers.onEvent(outputEvent(task.id, 3, 0, "x")); // seq 2 (started) went missing
  assert.deepEqual(calls.fetchTask, [task.id]);
  streams[0].handlers.onGiveUp();
  assert.equal(calls.verifySession, 1);
});

test("a failed output load says why; a 401 is left to the session's owner", async () => {
  const task = makeTask({ id: taskId(1), state: "running", seq: 2 });
  const gone = makeTask({ id: taskId(2), state: "running", seq: 2 });
  const late = makeTask({ id: taskId(3), state: "running", seq: 2 });
  const { store, calls, streams, rows } = setup({
    tasks: [task, gone, late],
    answers: { [task.id]: problem(503), [gone.id]: problem(404), [late.id]: problem(401) },
  });
  rows.toggle(task.id);
  await settle();
  assert.equal(store.state.details.get(task.id).status, "error");
  assert.match(store.state.details.get(task.id).message, /Couldn't load the output: detail 503/);
  rows.toggle(gone.id);
  await settle();
  assert.equal(store.state.details.get(gone.id).message, "The server no longer knows this task.");
  rows.toggle(late.id);
  await settle();
  assert.deepEqual(calls.lostSession.map((error) => error.status), [503, 404, 401]);
  assert.equal(store.state.details.get(late.id).status, "loading", "no error shown: the session's end takes over");
  assert.equal(streams.length, 0);
});

test("an answer for a closed row, or of an ended session, is dropped", async () => {
  const task = makeTask({ id: taskId(1), state: "running", seq: 2 });
  const other = makeTask({ id: taskId(2), state: "running", seq: 2 });
  const pending = [];
  const answer = (id) => () => new Promise((resolve) => pending.push(() => resolve({ task_id: id, last_event_id: "1764079200000-2", streams: {} })));
  const { store, streams, rows, endSession } = setup({
    tasks: [task, other],
    answers: { [task.id]: answer(task.id), [other.id]: answer(other.id) },
  });
  rows.toggle(task.id);
  rows.toggle(other.id);
  await settle();
  rows.toggle(task.id); // closed while its answer is on the way
  endSession();
  for (const release of pending) release();
  await settle();
  assert.equal(streams.length, 0);
  assert.equal(store.state.details.has(task.id), false);
  assert.equal(store.state.details.get(other.id).status, "loading");
});

test("stopAll closes every row's stream and drops the loads in flight", async () => {
  const tasks = [1, 2, 3].map((n) => makeTask({ id: taskId(n), state: "running", seq: 2 }));
  let release;
  const { streams, rows } = setup({
    tasks,
    answers: { [tasks[2].id]: () => new Promise((resolve) => (release = resolve)) },
  });
  for (const task of tasks) {
    rows.toggle(task.id);
    await settle();
  }
  assert.equal(streams.length, 2);
  rows.stopAll();
  assert.ok(streams.every((own) => own.stopped));
  release({ task_id: tasks[2].id, last_event_id: "1764079200000-2", streams: {} });
  await settle();
  assert.equal(streams.length, 2, "the late answer opens no stream");
});

test("a reload that drops a task closes its row's stream", async () => {
  const kept = makeTask({ id: taskId(2), state: "running", seq: 2 });
  const dropped = makeTask({ id: taskId(1), state: "running", seq: 2 });
  const { store, streams, rows } = setup({ tasks: [kept, dropped] });
  rows.toggle(kept.id);
  await settle();
  rows.toggle(dropped.id);
  await settle();
  store.beginResync();
  store.loadSnapshot([kept]);
  rows.dropUnshown();
  assert.equal(store.state.details.has(dropped.id), false);
  assert.deepEqual(streams.map((own) => own.stopped), [undefined, true]);
});

test("copy puts the stream's whole text on the clipboard and says so for a while", async () => {
  const task = makeTask({ id: taskId(1), state: "running", seq: 2 });
  const copied = [];
  const { store, timers, rows } = setup({
    tasks: [task],
    answers: { [task.id]: { task_id: task.id, last_event_id: "1764079200000-2", streams: { output: { type: "text", length: 3, text: "a🌍b" } } } },
    clipboard: { copy: async (text) => copied.push(text) > 0 },
  });
  rows.toggle(task.id);
  await settle();
  await rows.copy(task.id, "output");
  assert.deepEqual(copied, ["a🌍b"]);
  assert.deepEqual(store.state.details.get(task.id).copied, { stream: "output", ok: true });
  timers.advance(3000);
  assert.equal(store.state.details.get(task.id).copied, null);
});

test("a refused copy says so; without a clipboard or the stream, copy does nothing", async () => {
  const task = makeTask({ id: taskId(1), state: "running", seq: 2 });
  const answers = { [task.id]: { task_id: task.id, last_event_id: "1764079200000-2", streams: { output: { type: "text", length: 1, text: "a" } } } };
  const refused = setup({ tasks: [task], answers, clipboard: { copy: async () => Promise.reject(new Error("denied")) } });
  refused.rows.toggle(task.id);
  await settle();
  await refused.rows.copy(task.id, "output");
  assert.deepEqual(refused.store.state.details.get(task.id).copied, { stream: "output", ok: false });

  const none = setup({ tasks: [task], answers });
  none.rows.toggle(task.id);
  await settle();
  await none.rows.copy(task.id, "output");
  await none.rows.copy(task.id, "nothing");
  assert.equal(none.store.state.details.get(task.id).copied, null);
  assert.equal(none.timers.pending.length, 0);
});
