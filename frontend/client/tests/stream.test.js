import { test, beforeEach } from "node:test";
import assert from "node:assert/strict";
import { createStream, EVENT_TYPES } from "../src/stream.js";
import { FakeEventSource, fakeTimers, makeEvent } from "./helpers.js";

const url = (id) => `/api/events${id ? `?last_event_id=${encodeURIComponent(id)}` : ""}`;

function setup({ online = true } = {}) {
  const timers = fakeTimers();
  const events = [];
  const resets = [];
  const states = [];
  const connectivity = new EventTarget();
  const network = { online };
  const stream = createStream({
    url,
    EventSource: FakeEventSource,
    onEvent: (event) => events.push(event),
    onReset: (data) => resets.push(data),
    onState: (state) => states.push(state),
    isOnline: () => network.online,
    connectivity,
    timers,
    random: () => 1,
    backoff: { initialMs: 1000, maxMs: 8000 },
    openTimeoutMs: 15000,
  });
  return { stream, timers, events, resets, states, connectivity, network };
}

beforeEach(() => FakeEventSource.reset());

test("opens exactly one EventSource, resuming after the given id, and goes live on open", () => {
  const { stream, states } = setup();
  stream.start("1764072000000-3");
  assert.equal(FakeEventSource.instances.length, 1);
  assert.equal(FakeEventSource.last.url, "/api/events?last_event_id=1764072000000-3");
  assert.deepEqual(states, ["connecting"]);
  FakeEventSource.last.open();
  assert.deepEqual(states, ["connecting", "live"]);
});

test("without a resume id the stream starts from now", () => {
  const { stream } = setup();
  stream.start(null);
  assert.equal(FakeEventSource.last.url, "/api/events");
});

test("listens to every named event type and hands over parsed events", () => {
  const { stream, events } = setup();
  stream.start();
  const source = FakeEventSource.last;
  for (const type of [...EVENT_TYPES, "reset"]) assert.ok(source.listeners.has(type), `listens to ${type}`);
  source.open();
  source.emit("progress", makeEvent("t1", 3, "progress", { id: "1764072000000-7", progress: { percent: 60 } }));
  assert.equal(events.length, 1);
  assert.equal(events[0].type, "progress");
  assert.equal(events[0].progress.percent, 60);
  assert.equal(stream.lastEventId, "1764072000000-7");
});

test("a malformed message is skipped without breaking the stream", () => {
  const { stream, events } = setup();
  stream.start();
  FakeEventSource.last.emit("started", "{not json", "1-0");
  FakeEventSource.last.emit("started", makeEvent("t", 2, "started", { id: "2-0" }));
  assert.equal(events.length, 1);
  assert.equal(stream.lastEventId, "2-0");
});

test("while the browser retries by itself the state is reconnecting and no new EventSource is made", () => {
  const { stream, states } = setup();
  stream.start();
  FakeEventSource.last.open();
  FakeEventSource.last.fail(0);
  assert.equal(states.at(-1), "reconnecting");
  assert.equal(FakeEventSource.instances.length, 1);
  FakeEventSource.last.open();
  assert.equal(states.at(-1), "live");
});

test("when the browser gives up, a new EventSource resumes from the last id seen after a backoff", () => {
  const { stream, timers, states } = setup();
  stream.start("5-0");
  const first = FakeEventSource.last;
  first.open();
  first.emit("queued", makeEvent("t", 1, "queued", { id: "9-0" }));
  first.fail(2);
  assert.equal(first.closed, true);
  assert.equal(states.at(-1), "reconnecting");
  timers.advance(999);
  assert.equal(FakeEventSource.instances.length, 1, "waits for the backoff");
  timers.advance(1);
  assert.equal(FakeEventSource.instances.length, 2);
  assert.equal(FakeEventSource.last.url, "/api/events?last_event_id=9-0");
  FakeEventSource.last.open();
  assert.equal(states.at(-1), "live");
});

test("repeated failures back off exponentially up to the cap, and an open resets the backoff", () => {
  const { stream, timers } = setup();
  stream.start();
  const waits = [];
  for (let i = 0; i < 5; i += 1) {
    const before = timers.now;
    FakeEventSource.last.fail(2);
    const count = FakeEventSource.instances.length;
    while (FakeEventSource.instances.length === count) timers.advance(100);
    waits.push(timers.now - before);
  }
  assert.deepEqual(waits, [1000, 2000, 4000, 8000, 8000]);
  FakeEventSource.last.open();
  const before = timers.now;
  FakeEventSource.last.fail(2);
  timers.advance(1000);
  assert.equal(timers.now - before, 1000);
  assert.equal(FakeEventSource.instances.length, 7);
});

test("a connection that never opens is abandoned and retried", () => {
  const { stream, timers, states } = setup();
  stream.start();
  timers.advance(15000);
  assert.equal(FakeEventSource.instances[0].closed, true);
  assert.equal(states.at(-1), "reconnecting");
  timers.advance(1000);
  assert.equal(FakeEventSource.instances.length, 2);
});

test("a reset event reports its data and moves the resume point to the server's position", () => {
  const { stream, timers, resets } = setup();
  stream.start("stale-id");
  const source = FakeEventSource.last;
  source.open();
  source.emit("reset", { reason: "unknown last_event_id", last_event_id: "100-0" }, "100-0");
  assert.deepEqual(resets, [{ reason: "unknown last_event_id", last_event_id: "100-0" }]);
  assert.equal(stream.lastEventId, "100-0");
  source.fail(2);
  timers.advance(1000);
  assert.equal(FakeEventSource.last.url, "/api/events?last_event_id=100-0");
});

test("going offline shows offline; coming back online reconnects at once instead of waiting", () => {
  const { stream, timers, states, connectivity, network } = setup();
  stream.start();
  FakeEventSource.last.open();
  network.online = false;
  connectivity.dispatchEvent(new Event("offline"));
  assert.equal(states.at(-1), "offline");
  FakeEventSource.last.fail(2);
  assert.equal(states.at(-1), "offline", "errors while offline keep saying offline");
  network.online = true;
  connectivity.dispatchEvent(new Event("online"));
  assert.equal(FakeEventSource.instances.length, 2, "reconnected without waiting for the backoff");
  assert.equal(states.at(-1), "reconnecting");
  FakeEventSource.last.open();
  assert.equal(states.at(-1), "live");
  assert.equal(timers.pending.length, 0, "the backoff timer was cancelled");
});

test("starting while offline reports offline", () => {
  const { stream, states } = setup({ online: false });
  stream.start();
  assert.deepEqual(states, ["offline"]);
});

test("stop closes the source, cancels timers and ignores late events", () => {
  const { stream, timers, events, states } = setup();
  stream.start();
  const source = FakeEventSource.last;
  source.open();
  stream.stop();
  assert.equal(source.closed, true);
  assert.equal(states.at(-1), "closed");
  source.emit("queued", makeEvent("t", 1, "queued"));
  assert.equal(events.length, 0);
  timers.advance(60000);
  assert.equal(FakeEventSource.instances.length, 1);
});

test("events from a replaced EventSource are ignored", () => {
  const { stream, timers, events } = setup();
  stream.start();
  const old = FakeEventSource.last;
  old.fail(2);
  timers.advance(1000);
  old.emit("queued", makeEvent("t", 1, "queued"));
  assert.equal(events.length, 0);
});

test("every EventSource, first and reopened, is opened withCredentials", () => {
  const { stream, timers } = setup();
  stream.start("1-0");
  assert.equal(FakeEventSource.last.withCredentials, true);
  FakeEventSource.last.fail(2);
  timers.advance(1000);
  assert.equal(FakeEventSource.instances.length, 2);
  assert.equal(FakeEventSource.last.withCredentials, true);
});

test("each give-up is reported, so a lost session can be noticed; the browser's own retries are not", () => {
  let giveUps = 0;
  const timers = fakeTimers();
  const stream = createStream({
    url,
    EventSource: FakeEventSource,
    onEvent: () => {},
    onReset: () => {},
    onGiveUp: () => (giveUps += 1),
    timers,
    random: () => 1,
    backoff: { initialMs: 1000, maxMs: 8000 },
  });
  stream.start();
  FakeEventSource.last.open();
  FakeEventSource.last.fail(0);
  assert.equal(giveUps, 0, "the browser is retrying by itself");
  FakeEventSource.last.fail(2);
  assert.equal(giveUps, 1);
  timers.advance(1000);
  FakeEventSource.last.fail(2);
  assert.equal(giveUps, 2);
});

test("with onSnapshot, a snapshot event is handed over and moves the resume point", () => {
  const snapshots = [];
  const timers = fakeTimers();
  const stream = createStream({ url, EventSource: FakeEventSource, onEvent: () => {}, onReset: () => {}, onSnapshot: (data) => snapshots.push(data), timers });
  stream.start("1-0");
  const source = FakeEventSource.last;
  assert.ok(source.listeners.has("snapshot"));
  source.emit("snapshot", { task: { id: "t" }, output: { streams: {} } }, "40-0");
  assert.deepEqual(snapshots, [{ task: { id: "t" }, output: { streams: {} } }]);
  assert.equal(stream.lastEventId, "40-0");
});

test("without onSnapshot the list's stream does not listen for snapshots", () => {
  const { stream } = setup();
  stream.start();
  assert.equal(FakeEventSource.last.listeners.has("snapshot"), false);
  for (const type of ["output", "log", "metadata"]) assert.ok(EVENT_TYPES.includes(type), `the table's ${type} row is read`);
});
