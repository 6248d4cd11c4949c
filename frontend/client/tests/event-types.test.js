import { test } from "node:test";
import assert from "node:assert/strict";
import { readFileSync } from "node:fs";
import { ACTIVE_STATES, EVENT_TYPES, FINAL_STATES, OUTPUT_LOG_STATES, OUTPUT_LOG_TYPES, RULES, compile, ruleFor } from "../src/event-types.js";

const onDisk = JSON.parse(readFileSync(new URL("../../../backend/taskstream/events/types.json", import.meta.url), "utf8"));

const rule = (sets, extra = {}) => compile({ types: { e: { state: "s", follows: ["s"], final: false, sets, ...extra } } }).get("e");
const write = (sets, current, event) => {
  const [[field, fn]] = rule(sets).writes;
  return { [field]: fn(current, event) };
};

test("the page reads every row of the server's table", () => {
  assert.deepEqual(EVENT_TYPES, Object.keys(onDisk.types));
  for (const [type, row] of Object.entries(onDisk.types)) {
    const compiled = RULES.get(type);
    assert.equal(compiled.state, row.state, type);
    assert.deepEqual([...compiled.follows], row.follows, type);
    assert.equal(compiled.final, row.final, type);
    assert.deepEqual(compiled.writes.map(([field]) => field), Object.keys(row.sets), type);
  }
});

test("final states come from the final rows, every other state is active", () => {
  assert.deepEqual([...FINAL_STATES].sort(), ["cancelled", "failed", "succeeded"]);
  assert.deepEqual([...ACTIVE_STATES].sort(), ["queued", "retrying", "running"]);
});

test("a first event needs no task; any other needs a task in a state it follows", () => {
  assert.equal(ruleFor(undefined, "queued")?.type, "queued");
  assert.equal(ruleFor({ state: "queued" }, "queued"), null, "a task is queued once");
  assert.equal(ruleFor(undefined, "started"), null);
  assert.equal(ruleFor({ state: "retrying" }, "started")?.state, "running");
  assert.equal(ruleFor({ state: "succeeded" }, "progress"), null);
  assert.equal(ruleFor({ state: "running" }, "rebooted"), null, "an unknown type");
  assert.equal(ruleFor({ state: "running" }, "toString"), null, "not a property of some object");
});

test("a string copies the event's field, and a field the event lacks copies as null", () => {
  assert.deepEqual(write({ result: "result" }, 1, { result: { ok: true } }), { result: { ok: true } });
  assert.deepEqual(write({ result: "result" }, 1, { result: null }), { result: null });
  assert.deepEqual(write({ error: "error" }, { type: "E" }, {}), { error: null });
  assert.deepEqual(write({ created_at: "at" }, null, { at: "t" }), { created_at: "t" }, "under another name");
});

test("null clears, add adds, first keeps an existing value, value writes itself", () => {
  assert.deepEqual(write({ progress: null }, { percent: 5 }, { progress: { percent: 9 } }), { progress: null });
  assert.deepEqual(write({ attempts: { add: 1 } }, 2, {}), { attempts: 3 });
  assert.deepEqual(write({ attempts: { add: 1 } }, null, {}), { attempts: 1 }, "from nothing");
  assert.deepEqual(write({ started_at: { first: "at" } }, null, { at: "t2" }), { started_at: "t2" });
  assert.deepEqual(write({ started_at: { first: "at" } }, "t1", { at: "t2" }), { started_at: "t1" });
  assert.deepEqual(write({ cancel_requested: { value: false } }, true, {}), { cancel_requested: false });
});

test("a table the page cannot read fails loudly instead of being half followed", () => {
  assert.throws(() => rule({ attempts: { multiply: 2 } }), /e\.attempts: \{"multiply":2\} is not a field write/);
  assert.throws(() => rule({ attempts: { add: 1, first: "at" } }), /not a field write/);
  assert.throws(() => rule({ attempts: 7 }), /not a field write/);
  assert.throws(() => compile({ types: { e: { follows: [] } } }), /no state or follows/);
  assert.throws(() => compile({}), /no types/);
});

test("a row's flags: no follows means first, final only when said", () => {
  assert.equal(rule({}, { follows: [] }).first, true);
  assert.equal(rule({}).first, false);
  assert.equal(rule({}).final, false);
  assert.equal(rule({}, { final: true }).final, true);
});

test("extend adds an output chunk to the summary; a field some row extends is a map, cleared to {}", () => {
  const rules = compile({
    types: {
      out: { state: "s", follows: ["s"], final: false, output_log: true, sets: { output: { extend: "output" } } },
      again: { state: "s", follows: ["s"], final: false, sets: { output: null, metadata: null } },
    },
  });
  const [[, extend]] = rules.get("out").writes;
  const chunk = { stream: "output", offset: 3, text: "dé🌍" };
  assert.deepEqual(extend({ output: { type: "text", length: 3, truncated: false } }, { output: chunk }), {
    output: { type: "text", length: 6, truncated: false },
  });
  assert.equal(rules.get("out").chunk, "output");
  assert.equal(rules.get("out").outputLog, true);
  const writes = Object.fromEntries(rules.get("again").writes);
  assert.deepEqual(writes.output(), {}, "a map clears to {}");
  assert.equal(writes.metadata(), null, "any other field to null");
  assert.deepEqual([...rules.get("again").clears], ["output"]);
  assert.throws(() => compile({ types: { e: { state: "s", follows: [], sets: { output: { extend: 3 } } } } }), /not a field write/);
});

test("output and log lines come on the output log, which running keeps", () => {
  assert.deepEqual([...OUTPUT_LOG_TYPES].sort(), ["log", "output"]);
  assert.deepEqual([...OUTPUT_LOG_STATES], ["running"]);
  assert.ok(RULES.get("started").clears.has("output"), "a new attempt starts its output afresh");
});
