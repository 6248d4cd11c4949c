import { test, beforeEach } from "node:test";
import assert from "node:assert/strict";
import { setImmediate as tick } from "node:timers/promises";
import { ApiError, createClient, MAX_GAP_SYNCS, watchTask } from "../src/index.js";
import { FakeEventSource, fakeServer, fakeTimers, makeEvent, makeTask, problemResponse, taskId } from "./helpers.js";

const ID = taskId(1);
const at = (seq) => `1764079200000-${seq}`;
const task = (seq, extra = {}) => makeTask({ id: ID, state: "running", seq, last_event_id: at(seq), kind: "generate", ...extra });
const output = (seq, text = "", extra = {}) => ({
  task_id: ID,
  last_event_id: at(seq),
  streams: text ? { output: { type: "text", length: [...text].length, truncated: false, text } } : {},
  logs: [],
  ...extra,
});
const chunk = (seq, offset, text, stream = "output") => makeEvent(ID, seq, "output", { output: { stream, offset, text } });
const resumedAt = (source) => new URL(source.url, "http://x").searchParams.get("last_event_id");

async function settle() {
  for (let i = 0; i < 10; i += 1) await tick();
}

/** A watch of task ID on a fake API; every callback is recorded in `seen`, in order. */
function setup({ server = fakeServer({ task: task(2), output: output(2) }), token, options = {} } = {}) {
  const timers = fakeTimers();
  const client = createClient({ fetch: server.fetch, EventSource: FakeEventSource, timers, random: () => 1, connectivity: null, token });
  const seen = [];
  const record =
    (name) =>
    (...args) =>
      seen.push([name, ...args]);
  const handlers = Object.fromEntries(
    ["onEvent", "onProgress", "onOutput", "onLog", "onSnapshot", "onState", "onRetry", "onEnd", "onError"].map((name) => [name, record(name)]),
  );
  const watch = client.watchTask(ID, { ...handlers, ...options });
  const of = (name) => seen.filter(([kind]) => kind === name).map(([, ...args]) => args);
  return { server, timers, client, watch, seen, of };
}

beforeEach(() => FakeEventSource.reset());

test("loads the output, then the task, then follows the task's stream after the output's last event", async () => {
  const { server, watch, of } = setup({ server: fakeServer({ task: task(4), output: output(4, "Hello ") }) });
  assert.equal(watch.task, null, "nothing before the first answer");
  await settle();
  assert.deepEqual(server.paths(), [`GET /api/tasks/${ID}/output`, `GET /api/tasks/${ID}`]);
  assert.equal(FakeEventSource.instances.length, 1);
  const source = FakeEventSource.last;
  assert.equal(source.url, `/api/tasks/${ID}/events?last_event_id=${at(4)}`);
  assert.equal(source.withCredentials, true, "no token: the session cookie goes along");
  assert.equal(watch.task.seq, 4);
  assert.equal(watch.output.streams.get("output").text, "Hello ");
  assert.equal(of("onSnapshot").length, 1);
  assert.deepEqual(of("onState").flat(), ["connecting", "connecting"]);
  source.open();
  assert.deepEqual(of("onState").at(-1), ["live"]);
});

test("applies each event once, in seq order, after folding it into the task; repeats are dropped", async () => {
  const { watch, seen, of } = setup();
  await settle();
  const source = FakeEventSource.last;
  source.open();
  seen.length = 0;
  const progress = makeEvent(ID, 3, "progress", { progress: { current: 1, total: 4, percent: 25, message: "one" } });
  source.emit("progress", progress);
  source.emit("output", chunk(4, 0, "wörld 🌍"));
  source.emit("log", makeEvent(ID, 5, "log", { log: { level: "warning", message: "careful" } }));
  for (const again of [progress, chunk(4, 0, "wörld 🌍"), makeEvent(ID, 5, "log", { log: { level: "warning", message: "careful" } })]) {
    source.emit(again.type, again); // the browser's reconnect replays nothing, but a second delivery shows nothing twice
  }
  assert.deepEqual(
    seen.map(([name, first]) => [name, name === "onEvent" ? first.seq : undefined]),
    [
      ["onEvent", 3],
      ["onProgress", undefined],
      ["onEvent", 4],
      ["onOutput", undefined],
      ["onEvent", 5],
      ["onLog", undefined],
    ],
  );
  const [[event, folded]] = of("onEvent");
  assert.equal(event.seq, 3);
  assert.equal(folded.seq, 3, "the task handed over is the one after the event");
  assert.deepEqual(folded.progress, progress.progress);
  const [[name, text, applied, after]] = of("onOutput");
  assert.deepEqual([name, text, applied.offset, after.seq], ["output", "wörld 🌍", 0, 4]);
  assert.deepEqual(of("onLog")[0][0].message, "careful");
  assert.equal(watch.task.seq, 5);
  assert.deepEqual(watch.task.output, { output: { type: "text", length: 7, truncated: false } }, "the summary as the server folds it");
  assert.equal(watch.output.streams.get("output").length, 7, "code points, not UTF-16 units");
});

test("a task read after its output counts events whose chunks the output still lacks: those apply by offset alone", async () => {
  const server = fakeServer({ task: task(4), output: output(2, "ab") });
  const { watch, of } = setup({ server });
  await settle();
  const source = FakeEventSource.last;
  assert.equal(resumedAt(source), at(2));
  source.emit("output", chunk(3, 2, "cd"));
  source.emit("output", chunk(4, 4, "ef"));
  assert.equal(of("onEvent").length, 0, "the task has them");
  assert.deepEqual(of("onOutput").map(([, text]) => text), ["abcd", "abcdef"]);
  source.emit("output", chunk(5, 6, "g"));
  assert.equal(of("onEvent").length, 1);
  assert.equal(watch.task.seq, 5);
});

test("a copy of the task given is used when it is as new as the output: one request", async () => {
  const server = fakeServer({ task: task(9), output: output(3) });
  const timers = fakeTimers();
  const client = createClient({ fetch: server.fetch, EventSource: FakeEventSource, timers, connectivity: null });
  const watch = client.watchTask(ID, { task: task(3) });
  assert.equal(watch.task.seq, 3, "the copy given, at once");
  await settle();
  assert.deepEqual(server.paths(), [`GET /api/tasks/${ID}/output`]);
  watch.stop();
});

test("a gap in seq, and a chunk past the length, refetch over REST and resume from the new answer", async () => {
  let held = task(2);
  let answer = output(2);
  const server = fakeServer({ task: () => held, output: () => answer });
  const { watch, of } = setup({ server });
  await settle();
  const first = FakeEventSource.last;
  first.emit("output", chunk(3, 0, "abc"));
  held = task(6);
  answer = output(6, "abcdefghi");
  first.emit("progress", makeEvent(ID, 6, "progress", { progress: { current: 1, total: 2, percent: 50 } })); // 4 and 5 went missing
  assert.equal(first.closed, true);
  assert.deepEqual(of("onState").at(-1), ["connecting"], "never live yet: still connecting");
  await settle();
  assert.equal(server.paths().filter((path) => path.endsWith("/output")).length, 2);
  const second = FakeEventSource.last;
  assert.equal(resumedAt(second), at(6));
  assert.equal(watch.task.seq, 6);
  assert.equal(watch.output.streams.get("output").text, "abcdefghi");
  first.emit("output", chunk(7, 9, "late"));
  assert.equal(watch.output.streams.get("output").text, "abcdefghi", "the old stream is not heard");

  second.open();
  answer = output(8, "abcdefghijk");
  held = task(8);
  second.emit("output", chunk(7, 11, "xyz")); // a chunk past the length: chunks were missed
  assert.equal(second.closed, true);
  assert.deepEqual(of("onState").at(-1), ["reconnecting"]);
  await settle();
  assert.equal(resumedAt(FakeEventSource.last), at(8));
  assert.equal(watch.output.streams.get("output").text, "abcdefghijk");
});

test("gaps that refetching does not mend end the watch, out of step", async () => {
  const { watch, of } = setup();
  await settle();
  for (let i = 0; i <= MAX_GAP_SYNCS; i += 1) {
    FakeEventSource.last.emit("output", chunk(3, 50, "x"));
    await settle();
  }
  assert.equal(FakeEventSource.instances.length, MAX_GAP_SYNCS + 1);
  const [[error]] = of("onError");
  assert.ok(error instanceof ApiError);
  assert.equal(error.code, "out_of_step");
  await assert.rejects(watch.done, (reason) => reason === error);
});

test("a reset refetches over REST and resumes from the new answer", async () => {
  let answer = output(2);
  const server = fakeServer({ task: () => task(9), output: () => answer });
  const { watch } = setup({ server });
  await settle();
  const first = FakeEventSource.last;
  answer = output(9, "hi");
  first.emit("reset", { reason: "trimmed" });
  assert.equal(first.closed, true);
  await settle();
  assert.equal(resumedAt(FakeEventSource.last), at(9));
  assert.equal(watch.output.streams.get("output").text, "hi");
  assert.equal(watch.task.seq, 9);
});

test("after a reset, an older task replaces the one held and the seqs it lost are applied again", async () => {
  // A Redis failover lost seq 3 and 4: the new primary holds the task at 2 and gives 3 again.
  let answer = output(4, "abcd");
  let held = task(4);
  const server = fakeServer({ task: () => held, output: () => answer });
  const { watch, of } = setup({ server });
  await settle();
  assert.equal(watch.task.seq, 4);
  answer = output(2, "ab");
  held = task(2);
  FakeEventSource.last.emit("reset", { reason: "unknown event id" });
  await settle();
  assert.equal(watch.task.seq, 2);
  assert.equal(watch.output.streams.get("output").text, "ab");
  assert.equal(resumedAt(FakeEventSource.last), at(2));
  FakeEventSource.last.emit("output", chunk(3, 2, "X"));
  assert.equal(watch.task.seq, 3);
  assert.equal(watch.output.streams.get("output").text, "abX");
  assert.equal(of("onEvent").length, 1, "the new seq 3 is told");
});

test("a snapshot replaces the task and the output; the events after it follow on", async () => {
  const { watch, of } = setup();
  await settle();
  const source = FakeEventSource.last;
  source.emit("snapshot", { task: task(30, { metadata: { words: 9 } }), output: output(30, "abcd") }, at(30));
  assert.equal(watch.task.seq, 30);
  assert.deepEqual(watch.task.metadata, { words: 9 });
  assert.equal(watch.output.streams.get("output").text, "abcd");
  assert.equal(of("onSnapshot").length, 2, "the first answer, then the snapshot");
  source.emit("output", chunk(31, 4, "e"));
  assert.equal(watch.output.streams.get("output").text, "abcde");
});

test("a new attempt empties the streams (each reported empty) and its chunks start again at 0", async () => {
  const server = fakeServer({ task: task(2), output: output(2, "first try") });
  const { watch, of } = setup({ server });
  await settle();
  const source = FakeEventSource.last;
  source.emit("retrying", makeEvent(ID, 3, "retrying", { retry_at: "2025-11-25T14:00:09Z" }));
  assert.equal(watch.output.streams.get("output").text, "first try", "kept while it waits");
  source.emit("started", makeEvent(ID, 4, "started", { attempt: 2 }));
  assert.equal(watch.output.streams.size, 0);
  assert.deepEqual(of("onOutput").at(-1).slice(0, 3), ["output", "", null]);
  assert.deepEqual(watch.output.logs.map((line) => line.message), ["Attempt 2"]);
  source.emit("output", chunk(5, 0, "second"));
  assert.equal(watch.output.streams.get("output").text, "second");
});

test("after the stream gives up, it reads the task, then reconnects resuming after the last event seen", async () => {
  const { server, timers, of } = setup();
  await settle();
  const first = FakeEventSource.last;
  first.open();
  first.emit("output", chunk(3, 0, "abc"));
  first.fail(0); // the browser retries by itself, sending Last-Event-ID: nothing to do
  assert.equal(FakeEventSource.instances.length, 1);
  assert.deepEqual(of("onState").at(-1), ["reconnecting"]);
  first.fail(2); // it gave up
  const before = server.calls.length;
  timers.advance(1000);
  await settle();
  assert.deepEqual(server.paths().slice(before), [`GET /api/tasks/${ID}`], "an EventSource cannot see a 401 or a 404; a fetch can");
  assert.equal(FakeEventSource.instances.length, 2);
  assert.equal(resumedAt(FakeEventSource.last), at(3));
  FakeEventSource.last.open();
  assert.deepEqual(of("onState").at(-1), ["live"]);
});

test("a task gone (404) after a give-up ends the watch with the API's error, reconnecting no more", async () => {
  let gone = false;
  const server = fakeServer({ task: task(2), output: output(2), respond: (call) => (gone ? problemResponse(404, "not_found") : undefined) });
  const { timers, watch, of } = setup({ server });
  await settle();
  FakeEventSource.last.open();
  gone = true;
  FakeEventSource.last.fail(2);
  timers.advance(1000);
  await settle();
  assert.equal(FakeEventSource.instances.length, 1);
  const [[error]] = of("onError");
  assert.equal(error.status, 404);
  await assert.rejects(watch.done, (reason) => reason.status === 404);
  assert.deepEqual(of("onState").at(-1), ["closed"]);
  assert.equal(timers.pending.length, 0);
});

test("a failure worth retrying is retried with backoff and told; a 404 on the first read ends at once", async () => {
  let fails = 2;
  const server = fakeServer({
    task: task(2),
    output: output(2),
    respond: () => (fails-- > 0 ? problemResponse(503, "unavailable", "try later") : undefined),
  });
  const { timers, of } = setup({ server });
  await settle();
  assert.deepEqual(of("onRetry").map(([error, wait]) => [error.status, wait]), [[503, 1000]]);
  timers.advance(1000);
  await settle();
  assert.deepEqual(of("onRetry").map(([, wait]) => wait), [1000, 2000]);
  assert.equal(FakeEventSource.instances.length, 0);
  timers.advance(2000);
  await settle();
  assert.equal(FakeEventSource.instances.length, 1);

  FakeEventSource.reset();
  const missing = setup({ server: fakeServer() });
  await settle();
  assert.equal(missing.of("onError")[0][0].code, "not_found");
  assert.equal(missing.of("onRetry").length, 0);
  assert.equal(FakeEventSource.instances.length, 0);
  assert.equal(missing.timers.pending.length, 0);
});

test("ends once on the final event: onEnd, the stream closed, done resolved, later events unheard", async () => {
  const { timers, watch, of } = setup();
  await settle();
  const source = FakeEventSource.last;
  source.open();
  source.emit("output", chunk(3, 0, "all"));
  source.emit("succeeded", makeEvent(ID, 4, "succeeded", { result: 42 }));
  source.emit("succeeded", makeEvent(ID, 4, "succeeded", { result: 42 }));
  source.emit("log", makeEvent(ID, 5, "log", { log: { level: "info", message: "late" } }));
  assert.equal(source.closed, true);
  assert.equal(of("onEnd").length, 1);
  assert.equal(of("onEnd")[0][0].result, 42);
  assert.deepEqual(of("onState").at(-1), ["closed"]);
  assert.equal(of("onEvent").length, 2);
  assert.equal((await watch.done).state, "succeeded");
  assert.equal(timers.pending.length, 0, "no timer left");
  assert.equal(FakeEventSource.instances.length, 1);
});

test("a task that is already final, with its whole output, ends on the first answer: no stream", async () => {
  const final = task(5, { state: "succeeded", result: 1 });
  const { watch, of } = setup({ server: fakeServer({ task: final, output: output(5, "done") }) });
  assert.equal((await watch.done).result, 1);
  assert.equal(FakeEventSource.instances.length, 0);
  assert.equal(of("onEnd").length, 1);
  assert.equal(watch.output.streams.get("output").text, "done");
});

test("stops on abort: the stream closed, no timer left, nothing called back, done rejected", async () => {
  const controller = new AbortController();
  const { timers, watch, seen } = setup({ options: { signal: controller.signal } });
  await settle();
  const source = FakeEventSource.last;
  source.open();
  source.fail(0); // an open-timeout is armed while the browser retries
  assert.ok(timers.pending.length > 0);
  const heard = seen.length;
  controller.abort();
  assert.equal(source.closed, true);
  assert.equal(timers.pending.length, 0);
  source.emit("progress", makeEvent(ID, 3, "progress", { progress: { current: 1, total: 2, percent: 50 } }));
  timers.advance(60000);
  assert.equal(seen.length, heard, "nothing after the abort");
  assert.equal(FakeEventSource.instances.length, 1);
  await assert.rejects(watch.done, (error) => error.name === "AbortError");
});

test("stopped while its first read is on the way, it opens nothing; an aborted signal starts nothing", async () => {
  const { watch, seen } = setup();
  watch.stop();
  await settle();
  assert.equal(FakeEventSource.instances.length, 0);
  assert.ok(seen.every(([name]) => name === "onState"), "only the first connecting");
  await assert.rejects(watch.done, (error) => error.name === "AbortError");

  const server = fakeServer({ task: task(2), output: output(2) });
  const aborted = AbortSignal.abort();
  const never = watchTask(ID, { fetch: server.fetch, EventSource: FakeEventSource, signal: aborted, connectivity: null });
  await settle();
  assert.equal(server.calls.length, 0);
  await assert.rejects(never.done, (error) => error.name === "AbortError");
});

test("with a token function: a token refused after the stream failed is refreshed, and the new one is used", async () => {
  const tokens = ["t-1", "t-2"];
  let asked = 0;
  const valid = new Set(["t-1"]);
  const server = fakeServer({
    task: task(2),
    output: output(2),
    respond: (call) => (valid.has(call.headers.Authorization?.slice("Bearer ".length)) ? undefined : problemResponse(401, "token_expired", "the token expired")),
  });
  const { timers, watch, of } = setup({ server, token: async () => tokens[asked++] });
  await settle();
  assert.equal(asked, 1);
  const first = FakeEventSource.last;
  assert.match(first.url, /[?&]access_token=t-1(&|$)/);
  assert.equal(first.withCredentials, false, "with a token, no cookies by default");
  first.open();
  valid.clear();
  valid.add("t-2"); // t-1 expired: the server refuses the stream, which gives up
  first.fail(2);
  timers.advance(1000);
  await settle();
  assert.equal(asked, 2, "the function was asked again once the token was refused");
  assert.match(FakeEventSource.last.url, /[?&]access_token=t-2(&|$)/);
  assert.equal(resumedAt(FakeEventSource.last), at(2));
  assert.equal(of("onError").length, 0);
  assert.ok(server.calls.every((call) => !call.url.includes("access_token")), "REST sends the token in its header only");
  watch.stop();
});

test("a token string that expired ends the watch with token_expired: there is no way to refresh it", async () => {
  let expired = false;
  const server = fakeServer({
    task: task(2),
    output: output(2),
    respond: () => (expired ? problemResponse(401, "token_expired", "the token expired") : undefined),
  });
  const { timers, watch, of } = setup({ server, token: "only-one" });
  await settle();
  FakeEventSource.last.open();
  expired = true;
  FakeEventSource.last.fail(2);
  timers.advance(1000);
  await settle();
  assert.equal(of("onError")[0][0].code, "token_expired");
  await assert.rejects(watch.done, (error) => error.status === 401);
  assert.equal(FakeEventSource.instances.length, 1);
});

test("a callback that stops the watch is the last one called", async () => {
  const server = fakeServer({ task: task(2), output: output(2) });
  let calls = 0;
  const client = createClient({ fetch: server.fetch, EventSource: FakeEventSource, timers: fakeTimers(), connectivity: null });
  const watch = client.watchTask(ID, {
    onEvent: () => {
      calls += 1;
      watch.stop();
    },
    onProgress: () => (calls += 100),
  });
  await settle();
  FakeEventSource.last.emit("progress", makeEvent(ID, 3, "progress", { progress: { current: 1, total: 2, percent: 50 } }));
  assert.equal(calls, 1);
  assert.equal(FakeEventSource.last.closed, true);
});
