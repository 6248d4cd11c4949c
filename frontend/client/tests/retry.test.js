import { test } from "node:test";
import assert from "node:assert/strict";
import { setImmediate as settle } from "node:timers/promises";
import { backoffDelay, createRetrying } from "../src/retry.js";
import { fakeTimers } from "./helpers.js";

test("backoffDelay draws between half and all of the capped exponential", () => {
  const options = { initialMs: 1000, maxMs: 30000 };
  assert.equal(backoffDelay(0, options, () => 0), 500);
  assert.equal(backoffDelay(3, options, () => 1), 8000);
  assert.equal(backoffDelay(10, options, () => 1), 30000);
});

/** A load whose request fails `failures` times, then answers "ok". */
function setup({ failures = 0, handle, again } = {}) {
  const timers = fakeTimers();
  let epoch = 0;
  const seen = { requests: 0, applied: [], reports: [] };
  let left = failures;
  const retrying = createRetrying({ timers, backoff: { initialMs: 1000, maxMs: 4000 }, random: () => 1, epoch: () => epoch });
  const load = retrying({
    request: async () => {
      seen.requests += 1;
      if (left > 0) {
        left -= 1;
        throw new Error("down");
      }
      return "ok";
    },
    apply: (answer) => seen.applied.push(answer),
    report: (error, wait) => seen.reports.push([error.message, wait]),
    handle,
    again,
  });
  return { timers, load, seen, endEpoch: () => (epoch += 1), fail: (n) => (left = n) };
}

test("an answer is applied and nothing is scheduled", async () => {
  const { timers, load, seen } = setup();
  await load.run();
  assert.deepEqual(seen.applied, ["ok"]);
  assert.deepEqual(seen.reports, []);
  assert.equal(timers.pending.length, 0);
});

test("failures are reported with a growing wait and retried until one succeeds", async () => {
  const { timers, load, seen } = setup({ failures: 4 });
  await load.run();
  for (const wait of [1000, 2000, 4000, 4000]) {
    assert.equal(seen.reports.at(-1)[1], wait);
    timers.advance(wait - 1);
    assert.equal(seen.requests, seen.reports.length, "waits the whole backoff");
    timers.advance(1);
    await settle();
  }
  assert.equal(seen.requests, 5);
  assert.deepEqual(seen.applied, ["ok"]);
  assert.equal(timers.pending.length, 0);
});

test("a success starts the backoff afresh", async () => {
  const { timers, load, seen, fail } = setup({ failures: 2 });
  await load.run();
  timers.advance(1000);
  await settle();
  timers.advance(2000);
  await settle();
  assert.deepEqual(seen.applied, ["ok"]);
  fail(1);
  await load.run();
  assert.equal(seen.reports.at(-1)[1], 1000);
});

test("running now cancels the pending retry", async () => {
  const { timers, load, seen } = setup({ failures: 1 });
  await load.run();
  assert.equal(timers.pending.length, 1);
  await load.run();
  assert.equal(timers.pending.length, 0);
  timers.advance(10000);
  assert.equal(seen.requests, 2);
});

test("a failure the handler takes is not retried", async () => {
  const handled = [];
  const { timers, load, seen } = setup({ failures: 1, handle: (error) => handled.push(error.message) > 0 });
  await load.run();
  assert.deepEqual(handled, ["down"]);
  assert.deepEqual(seen.reports, []);
  assert.equal(timers.pending.length, 0);
});

test("a retry calls `again` when given, so the caller can redo its own steps", async () => {
  let agains = 0;
  const { timers, load } = setup({ failures: 1, again: () => (agains += 1) });
  await load.run();
  timers.advance(1000);
  assert.equal(agains, 1);
});

test("an answer or a failure from an earlier epoch is dropped", async () => {
  const first = setup();
  const pending = first.load.run();
  first.endEpoch();
  await pending;
  assert.deepEqual(first.seen.applied, []);

  const second = setup({ failures: 1 });
  const failing = second.load.run();
  second.endEpoch();
  await failing;
  assert.deepEqual(second.seen.reports, []);
  assert.equal(second.timers.pending.length, 0);
});

test("cancel stops a pending retry; reset also forgets the attempts", async () => {
  const { timers, load, seen, fail } = setup({ failures: 2 });
  await load.run();
  load.cancel();
  timers.advance(10000);
  assert.equal(seen.requests, 1);
  await load.run();
  assert.equal(seen.reports.at(-1)[1], 2000, "cancel keeps the count");
  load.reset();
  fail(1);
  await load.run();
  assert.equal(seen.reports.at(-1)[1], 1000, "reset starts again from the first wait");
});
