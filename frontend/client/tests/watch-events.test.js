import { test, beforeEach } from "node:test";
import assert from "node:assert/strict";
import { setImmediate as tick } from "node:timers/promises";
import { createClient, watchEvents } from "../src/index.js";
import { FakeEventSource, fakeServer, fakeTimers, makeEvent, taskId } from "./helpers.js";

const params = (source) => Object.fromEntries(new URL(source.url, "http://x").searchParams);

async function settle() {
  for (let i = 0; i < 10; i += 1) await tick();
}

function setup(options = {}, clientOptions = {}) {
  const timers = fakeTimers();
  const client = createClient({ baseUrl: "https://api.example.test", fetch: fakeServer().fetch, EventSource: FakeEventSource, timers, random: () => 1, connectivity: null, ...clientOptions });
  const seen = { events: [], resets: [], states: [], giveUps: 0 };
  const watch = client.watchEvents({
    onEvent: (event) => seen.events.push(event),
    onReset: (data) => seen.resets.push(data),
    onState: (state) => seen.states.push(state),
    onGiveUp: () => (seen.giveUps += 1),
    ...options,
  });
  return { timers, client, watch, seen };
}

beforeEach(() => FakeEventSource.reset());

test("the filters and the resume id go in the stream's address", () => {
  setup({ types: ["queued", "output"], kind: "generate", tag: "user:42", task: [taskId(1), taskId(2)], lastEventId: "17-0" });
  const source = FakeEventSource.last;
  assert.equal(new URL(source.url).pathname, "/api/events");
  assert.deepEqual(params(source), {
    last_event_id: "17-0",
    types: "queued,output",
    kind: "generate",
    tag: "user:42",
    task: `${taskId(1)},${taskId(2)}`,
  });
  FakeEventSource.reset();
  setup({ types: "succeeded,failed" });
  assert.deepEqual(params(FakeEventSource.last), { types: "succeeded,failed" }, "a comma-separated string too; no types: the server's defaults");
});

test("events come raw; a reconnect resumes after the last one seen, keeping the filters", () => {
  const { timers, watch, seen } = setup({ tag: "t", lastEventId: "1-0" });
  const first = FakeEventSource.last;
  first.open();
  const event = makeEvent(taskId(3), 4, "progress", { id: "20-0", progress: { current: 1, total: 2, percent: 50 } });
  first.emit("progress", event);
  assert.deepEqual(seen.events, [event]);
  assert.equal(watch.lastEventId, "20-0");
  first.fail(2);
  assert.equal(seen.giveUps, 1);
  timers.advance(1000);
  assert.deepEqual(params(FakeEventSource.last), { last_event_id: "20-0", tag: "t" });
  assert.deepEqual(seen.states, ["connecting", "live", "reconnecting", "reconnecting"]);
});

test("a reset is handed over, and moves the resume point to the server's", () => {
  const { timers, watch, seen } = setup({ lastEventId: "stale" });
  const source = FakeEventSource.last;
  source.emit("reset", { reason: "unknown last_event_id", last_event_id: "100-0" }, "100-0");
  assert.deepEqual(seen.resets, [{ reason: "unknown last_event_id", last_event_id: "100-0" }]);
  assert.equal(watch.lastEventId, "100-0");
  source.fail(2);
  timers.advance(1000);
  assert.equal(params(FakeEventSource.last).last_event_id, "100-0");
});

test("a token goes in the address as access_token; without one, the session cookie goes along", () => {
  setup({}, { token: "tag-token" });
  assert.equal(params(FakeEventSource.last).access_token, "tag-token");
  assert.equal(FakeEventSource.last.withCredentials, false);
  FakeEventSource.reset();
  setup({}, { token: "key", credentials: "include" });
  assert.equal(FakeEventSource.last.withCredentials, true, "credentials as asked");
  FakeEventSource.reset();
  setup();
  assert.equal(params(FakeEventSource.last).access_token, undefined);
  assert.equal(FakeEventSource.last.withCredentials, true);
});

test("a token function is asked before the first connection, and again after the stream gave up", async () => {
  let asked = 0;
  const { timers, seen } = setup({ tag: "t" }, { token: async () => `t-${++asked}` });
  assert.equal(FakeEventSource.instances.length, 0, "no address without the token");
  assert.deepEqual(seen.states, ["connecting"]);
  await settle();
  assert.equal(asked, 1);
  assert.equal(params(FakeEventSource.last).access_token, "t-1");
  FakeEventSource.last.open();
  FakeEventSource.last.fail(0);
  assert.equal(asked, 1, "the browser's own retry keeps its address");
  FakeEventSource.last.fail(2);
  timers.advance(1000);
  await settle();
  assert.equal(asked, 2);
  assert.equal(FakeEventSource.instances.length, 2);
  assert.equal(params(FakeEventSource.last).access_token, "t-2");
});

test("a token function that fails is asked again after a backoff", async () => {
  let fails = 1;
  const { timers, seen } = setup({}, { token: async () => (fails-- > 0 ? Promise.reject(new Error("backend down")) : "ok") });
  await settle();
  assert.equal(FakeEventSource.instances.length, 0);
  assert.equal(seen.states.at(-1), "reconnecting");
  timers.advance(1000);
  await settle();
  assert.equal(params(FakeEventSource.last).access_token, "ok");
});

test("stop and abort close the stream, cancel its timers and hear nothing more", async () => {
  const controller = new AbortController();
  const { timers, seen } = setup({ signal: controller.signal });
  const source = FakeEventSource.last;
  source.open();
  source.fail(2);
  assert.ok(timers.pending.length > 0);
  controller.abort();
  assert.equal(timers.pending.length, 0);
  timers.advance(60000);
  assert.equal(FakeEventSource.instances.length, 1);
  source.emit("queued", makeEvent(taskId(1), 1, "queued"));
  assert.equal(seen.events.length, 0);

  FakeEventSource.reset();
  let asked = 0;
  const pending = setup({}, { token: async () => `t-${++asked}` });
  pending.watch.stop();
  await settle();
  assert.equal(FakeEventSource.instances.length, 0, "a token that comes after stop opens nothing");

  const never = watchEvents({ EventSource: FakeEventSource, signal: AbortSignal.abort(), connectivity: null });
  assert.equal(FakeEventSource.instances.length, 0);
  never.stop();
});
