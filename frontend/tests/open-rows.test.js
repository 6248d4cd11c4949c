import { test } from "node:test";
import assert from "node:assert/strict";
import { setImmediate as tick } from "node:timers/promises";
import { createOpenRows } from "../src/open-rows.js";
import { createStore } from "../src/store.js";
import { ApiError } from "../client/src/index.js";
import { FakeEventSource, fakeTimers, makeEvent, makeTask, taskId } from "../client/tests/helpers.js";
import { pageClient } from "./fake-client.js";

const problem = (status) => new ApiError(status, { type: "http_error", title: "T", status, detail: `detail ${status}` });
const running = (n, seq, extra = {}) => makeTask({ id: taskId(n), state: "running", seq, last_event_id: `1764079200000-${seq}`, ...extra });

/** Lets the watches' requests and their answers run to their end. */
async function settle() {
  for (let i = 0; i < 10; i += 1) await tick();
}

/**
 * Open rows over a real store holding `tasks`, and real watches. `answers[id]`: the `/output`
 * answer (an object, an Error to throw, or a function returning either or a promise). The API's
 * copy of a task is `remote[id]` when given, else the store's. The collaborators the controller
 * would give record their calls; `endSession()` moves the epoch on.
 */
function setup({ tasks = [], answers = {}, remote = {}, ...options } = {}) {
  const store = createStore();
  store.loadSnapshot(tasks);
  const timers = fakeTimers();
  const calls = { getOutput: [], getTask: [], lostSession: [], fetchTask: [] };
  const { client } = pageClient(
    {
      getOutput: async (id) => {
        calls.getOutput.push(id);
        const answer = answers[id];
        if (answer instanceof Error) throw answer;
        return typeof answer === "function" ? answer() : (answer ?? { task_id: id, last_event_id: "1764079200000-2", streams: {} });
      },
      getTask: async (id) => {
        calls.getTask.push(id);
        const task = remote[id] ?? store.state.tasks.get(id);
        if (task instanceof Error) throw task;
        return task ?? Promise.reject(problem(404));
      },
    },
    { timers },
  );
  let epoch = 0;
  const rows = createOpenRows({
    client,
    store,
    timers,
    epoch: () => epoch,
    lostSession: (error) => {
      calls.lostSession.push(error);
      return error?.status === 401;
    },
    fetchTask: (id) => calls.fetchTask.push(id),
    ...options,
  });
  return { store, timers, calls, streams: FakeEventSource.instances, rows, remote, endSession: () => (epoch += 1) };
}

const outputEvent = (id, seq, offset, text) => makeEvent(id, seq, "output", { output: { stream: "output", offset, text } });
const resumedAt = (source) => new URL(source.url, "http://x").searchParams.get("last_event_id");
const text = (store, id) => store.state.details.get(id).output.streams.get("output")?.text;

/** What the controller does with an event of the list's stream. */
function listEvent(store, rows, event) {
  store.applyEvent(event);
  rows.dropUnshown();
}

test("opening a row loads its output, then follows the task's stream after the answer's last event", async () => {
  const task = running(1, 4);
  const { store, calls, streams, rows } = setup({
    tasks: [task],
    answers: { [task.id]: { task_id: task.id, last_event_id: "1764079200000-4", streams: { output: { type: "text", length: 6, text: "Hello " } } } },
  });
  rows.toggle(task.id);
  assert.equal(store.state.details.get(task.id).status, "loading");
  await settle();
  assert.deepEqual(calls.getOutput, [task.id]);
  assert.deepEqual(calls.getTask, [], "the listed task is as new as the output");
  const [own] = streams;
  assert.equal(own.url, `/api/tasks/${task.id}/events?last_event_id=1764079200000-4`);
  assert.ok(own.listeners.has("snapshot"));
  assert.equal(store.state.details.get(task.id).status, "live");

  own.emit("output", outputEvent(task.id, 5, 6, "world"));
  own.emit("output", outputEvent(task.id, 5, 6, "world"));
  assert.equal(text(store, task.id), "Hello world");
  assert.equal(store.state.tasks.get(task.id).seq, 5, "the task's own events fold into the task too");
  assert.equal(store.state.log.length, 0, "output is no update to log");

  rows.toggle(task.id);
  assert.equal(own.closed, true, "closing the row closes its stream");
  assert.equal(store.state.details.has(task.id), false);
});

test("an output newer than the listed task brings the task's REST copy, and the store takes it", async () => {
  const task = running(1, 2);
  const { store, calls, streams, rows } = setup({
    tasks: [task],
    answers: { [task.id]: { task_id: task.id, last_event_id: "1764079200000-7", streams: {} } },
    remote: { [task.id]: { ...task, seq: 7, last_event_id: "1764079200000-7", metadata: { words: 3 } } },
  });
  rows.toggle(task.id);
  await settle();
  assert.deepEqual(calls.getTask, [task.id]);
  assert.equal(store.state.tasks.get(task.id).seq, 7);
  assert.deepEqual(store.state.tasks.get(task.id).metadata, { words: 3 });
  assert.equal(resumedAt(streams[0]), "1764079200000-7");
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
  const task = running(1, 2);
  let answer = { task_id: task.id, last_event_id: "1764079200000-2", streams: {} };
  const { store, calls, streams, rows, remote } = setup({ tasks: [task], answers: { [task.id]: () => answer } });
  rows.toggle(task.id);
  await settle();
  const [first] = streams;
  first.emit("output", outputEvent(task.id, 3, 0, "abc"));
  answer = { task_id: task.id, last_event_id: "1764079200000-4", streams: { output: { type: "text", length: 9, text: "abcdefghi" } } };
  remote[task.id] = { ...store.state.tasks.get(task.id), seq: 4, last_event_id: "1764079200000-4" };
  first.emit("output", outputEvent(task.id, 4, 7, "hi")); // the chunk that ends at 7 went missing
  assert.equal(first.closed, true);
  await settle();
  assert.deepEqual(calls.getOutput, [task.id, task.id]);
  const [, second] = streams;
  assert.equal(resumedAt(second), "1764079200000-4");
  assert.equal(text(store, task.id), "abcdefghi");
  first.emit("output", outputEvent(task.id, 5, 9, "late"));
  assert.equal(text(store, task.id), "abcdefghi", "the old stream is not heard");
  second.emit("output", outputEvent(task.id, 5, 9, "!"));
  assert.equal(text(store, task.id), "abcdefghi!");
});

test("gaps that a refetch does not cure stop the row following, with a way to try again", async () => {
  const task = running(1, 2);
  const { store, streams, rows } = setup({ tasks: [task] });
  rows.toggle(task.id);
  await settle();
  for (let i = 0; i < 4; i += 1) {
    streams.at(-1).emit("output", outputEvent(task.id, 3, 50, "x"));
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
  const task = running(1, 2);
  const { store, streams, rows } = setup({ tasks: [task] });
  rows.toggle(task.id);
  await settle();
  const [own] = streams;
  // The list's stream brings the end before the row's stream has brought the last chunk.
  listEvent(store, rows, makeEvent(task.id, 4, "succeeded", { result: 1 }));
  assert.equal(own.closed, false, "the last chunk is still to come");
  own.emit("output", outputEvent(task.id, 3, 0, "all"));
  own.emit("succeeded", makeEvent(task.id, 4, "succeeded", { result: 1 }));
  assert.equal(own.closed, true);
  assert.equal(store.state.details.get(task.id).status, "complete");
  assert.equal(text(store, task.id), "all");
});

test("a task that ends while its row loads settles on the answer, opening no stream", async () => {
  const task = running(1, 3);
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
  const { store, calls, streams, rows } = setup({
    tasks: [task],
    answers: { [task.id]: { task_id: task.id, last_event_id: "1764079200000-5", streams: { output: { type: "text", length: 2, text: "ok" } } } },
  });
  rows.toggle(task.id);
  await settle();
  assert.equal(streams.length, 0);
  assert.deepEqual(calls.getTask, [], "one request: the output");
  assert.equal(store.state.details.get(task.id).status, "complete");
  assert.equal(text(store, task.id), "ok");
});

test("at most maxLiveOutputs rows follow live: opening one more pauses the oldest; Resume takes it back", async () => {
  const tasks = [1, 2, 3, 4, 5].map((n) => running(n, 2));
  const finished = makeTask({ id: taskId(6), state: "succeeded", seq: 2, last_event_id: "1764079200000-2" });
  const { store, streams, rows } = setup({ tasks: [...tasks, finished] });
  for (const task of tasks) {
    rows.toggle(task.id);
    await settle();
  }
  const owns = [...streams];
  assert.equal(owns.length, 5);
  assert.equal(owns[0].closed, true, "the oldest's stream closed");
  assert.equal(owns.slice(1).filter((own) => own.closed).length, 0);
  const oldest = store.state.details.get(tasks[0].id);
  assert.equal(oldest.status, "paused");
  assert.match(oldest.message, /at most 4 rows/, "the list's stream and 4 rows: 5 of HTTP/1.1's 6 connections");
  assert.ok(store.state.details.has(tasks[0].id), "its row stays open, with what it had");

  rows.toggle(finished.id);
  await settle();
  assert.equal(owns.slice(1).filter((own) => own.closed).length, 0, "a finished task's row pauses nobody");
  assert.equal(store.state.details.get(finished.id).status, "complete");

  rows.resume(tasks[0].id);
  await settle();
  assert.equal(streams.length, 6);
  assert.equal(owns[1].closed, true, "now the next oldest pauses");
  assert.equal(store.state.details.get(tasks[0].id).status, "live");
});

test("Resume goes on from what the row holds: the text it shows grows in place", async () => {
  const tasks = [1, 2].map((n) => running(n, 2));
  let answer = { task_id: tasks[0].id, last_event_id: "1764079200000-3", streams: { output: { type: "text", length: 5, text: "Hello" } } };
  const { store, streams, rows } = setup({ tasks, answers: { [tasks[0].id]: () => answer }, maxLiveOutputs: 1 });
  rows.toggle(tasks[0].id);
  await settle();
  const held = store.state.details.get(tasks[0].id).output.streams.get("output");
  rows.toggle(tasks[1].id);
  await settle();
  assert.equal(store.state.details.get(tasks[0].id).status, "paused");
  answer = { task_id: tasks[0].id, last_event_id: "1764079200000-4", streams: { output: { type: "text", length: 11, text: "Hello world" } } };
  rows.resume(tasks[0].id);
  await settle();
  assert.equal(store.state.details.get(tasks[0].id).output.streams.get("output"), held, "the same stream object: the view appends");
  assert.equal(held.text, "Hello world");
  assert.equal(resumedAt(streams.at(-1)), "1764079200000-4");
});

test("a snapshot on the row's stream replaces the output and the task", async () => {
  const task = running(1, 2);
  const { store, streams, rows } = setup({ tasks: [task] });
  rows.toggle(task.id);
  await settle();
  streams[0].emit(
    "snapshot",
    {
      task: { ...task, seq: 30, last_event_id: "1764079200000-30", metadata: { words: 9 } },
      output: { task_id: task.id, last_event_id: "1764079200000-30", streams: { output: { type: "text", length: 4, text: "abcd" } } },
    },
    "1764079200000-30",
  );
  assert.equal(store.state.tasks.get(task.id).seq, 30);
  assert.equal(text(store, task.id), "abcd");
  streams[0].emit("output", outputEvent(task.id, 31, 4, "e"));
  assert.equal(text(store, task.id), "abcde");
});

test("a reset on the row's stream reloads the output and follows on from the new answer", async () => {
  const task = running(1, 2);
  let answer = { task_id: task.id, last_event_id: "1764079200000-2", streams: {} };
  const { store, calls, streams, rows, remote } = setup({ tasks: [task], answers: { [task.id]: () => answer } });
  rows.toggle(task.id);
  await settle();
  const [first] = streams;
  first.open();
  answer = { task_id: task.id, last_event_id: "1764079200000-9", streams: { output: { type: "text", length: 2, text: "hi" } } };
  remote[task.id] = { ...task, seq: 9, last_event_id: "1764079200000-9" };
  first.emit("reset", { reason: "trimmed" });
  assert.equal(first.closed, true);
  assert.equal(store.state.details.get(task.id).connection, "reconnecting", "the row says it is catching up");
  await settle();
  assert.deepEqual(calls.getOutput, [task.id, task.id]);
  assert.equal(resumedAt(streams[1]), "1764079200000-9");
  assert.equal(text(store, task.id), "hi");
  first.emit("reset", {});
  await settle();
  assert.equal(calls.getOutput.length, 2, "a closed stream's reset is not heard");
});

test("the row's stream reports its connection to the row; a closed one's reports are not heard", async () => {
  const task = running(1, 2);
  const { store, streams, rows } = setup({ tasks: [task] });
  rows.toggle(task.id);
  await settle();
  assert.equal(store.state.details.get(task.id).connection, "connecting");
  streams[0].open();
  assert.equal(store.state.details.get(task.id).connection, "live");
  rows.resume(task.id);
  streams[0].fail(0);
  assert.equal(store.state.details.get(task.id).connection, null);
});

test("a row's stream that gave up reads its task before reconnecting: a 401 there ends the session", async () => {
  const task = running(1, 2);
  const { store, timers, calls, streams, rows, remote } = setup({ tasks: [task] });
  rows.toggle(task.id);
  await settle();
  streams[0].open();
  streams[0].fail(2); // the browser gave up: a 401, a 502, who knows
  timers.advance(1000);
  await settle();
  assert.deepEqual(calls.getTask, [task.id]);
  assert.equal(streams.length, 2, "it can still read the task: a new connection");
  assert.equal(store.state.details.get(task.id).status, "live");

  remote[task.id] = problem(401);
  streams[1].open();
  streams[1].fail(2);
  timers.advance(1000);
  await settle();
  assert.deepEqual(calls.lostSession.map((error) => error.status), [401]);
  assert.equal(streams.length, 2, "no connection after the session ended");
});

test("a failed output load says why and is tried again; a 404 ends the row; a 401 is left to the session's owner", async () => {
  const task = running(1, 2);
  const gone = running(2, 2);
  const late = running(3, 2);
  let failing = true;
  const { store, timers, calls, streams, rows } = setup({
    tasks: [task, gone, late],
    answers: {
      [task.id]: () => (failing ? Promise.reject(problem(503)) : { task_id: task.id, last_event_id: "1764079200000-2", streams: {} }),
      [gone.id]: problem(404),
      [late.id]: problem(401),
    },
  });
  rows.toggle(task.id);
  await settle();
  assert.equal(store.state.details.get(task.id).status, "error");
  assert.match(store.state.details.get(task.id).message, /Couldn't load the output: detail 503\. Trying again in 1 s\./);
  rows.toggle(gone.id);
  await settle();
  assert.equal(store.state.details.get(gone.id).message, "The server no longer knows this task.");
  rows.toggle(late.id);
  await settle();
  assert.deepEqual(calls.lostSession.map((error) => error.status), [503, 404, 401]);
  assert.equal(store.state.details.get(late.id).status, "loading", "no error shown: the session's end takes over");
  assert.equal(streams.length, 0);

  failing = false;
  timers.advance(1000);
  await settle();
  assert.equal(store.state.details.get(task.id).status, "live", "the retry got through");
  assert.equal(streams.length, 1);
});

test("an answer for a closed row, or of an ended session, is dropped", async () => {
  const task = running(1, 2);
  const other = running(2, 2);
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
  const tasks = [1, 2, 3].map((n) => running(n, 2));
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
  assert.ok(streams.every((own) => own.closed));
  release({ task_id: tasks[2].id, last_event_id: "1764079200000-2", streams: {} });
  await settle();
  assert.equal(streams.length, 2, "the late answer opens no stream");
});

test("a reload that drops a task closes its row's stream", async () => {
  const kept = running(2, 2);
  const dropped = running(1, 2);
  const { store, streams, rows } = setup({ tasks: [kept, dropped] });
  rows.toggle(kept.id);
  await settle();
  rows.toggle(dropped.id);
  await settle();
  store.beginResync();
  store.loadSnapshot([kept]);
  rows.dropUnshown();
  assert.equal(store.state.details.has(dropped.id), false);
  assert.deepEqual(
    streams.map((own) => own.closed),
    [false, true],
  );
});

test("copy puts the stream's whole text on the clipboard and says so for a while", async () => {
  const task = running(1, 2);
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
  const task = running(1, 2);
  const answers = { [task.id]: { task_id: task.id, last_event_id: "1764079200000-2", streams: { output: { type: "text", length: 1, text: "a" } } } };
  const refused = setup({ tasks: [task], answers, clipboard: { copy: async () => Promise.reject(new Error("denied")) } });
  refused.rows.toggle(task.id);
  await settle();
  await refused.rows.copy(task.id, "output");
  assert.deepEqual(refused.store.state.details.get(task.id).copied, { stream: "output", ok: false });

  const none = setup({ tasks: [task], answers });
  none.rows.toggle(task.id);
  await settle();
  const pending = none.timers.pending.length;
  await none.rows.copy(task.id, "output");
  await none.rows.copy(task.id, "nothing");
  assert.equal(none.store.state.details.get(task.id).copied, null);
  assert.equal(none.timers.pending.length, pending, "no Copied timer");
});
