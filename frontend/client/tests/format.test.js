import { test } from "node:test";
import assert from "node:assert/strict";
import { formatCountdown, formatDuration, formatError, formatParams, formatPercent, formatValue, shortId } from "../src/format.js";

test("durations read naturally at every scale", () => {
  assert.equal(formatDuration(850), "850 ms");
  assert.equal(formatDuration(4200), "4.2 s");
  assert.equal(formatDuration(42000), "42 s");
  assert.equal(formatDuration(185000), "3 min 05 s");
  assert.equal(formatDuration(7620000), "2 h 07 min");
  assert.equal(formatDuration(-5), "0 ms", "clock skew never shows a negative time");
  assert.equal(formatDuration(NaN), "");
});

test("countdowns round up to whole seconds and never go below zero", () => {
  assert.equal(formatCountdown(3200), "in 4 s");
  assert.equal(formatCountdown(0), "any moment");
  assert.equal(formatCountdown(-1000), "any moment");
  assert.equal(formatCountdown(90000), "in 1 min 30 s");
});

test("params keep JSON quoting so strings and numbers are told apart", () => {
  assert.equal(formatParams({ x: 2, y: "2", on: true }), 'x = 2, y = "2", on = true');
  assert.equal(formatParams({}), "");
  assert.equal(formatParams({ s: "a".repeat(400) }).length, 160);
});

test("values, percents, errors and ids", () => {
  assert.equal(formatValue({ a: [1, 2] }), '{"a":[1,2]}');
  assert.equal(formatValue("plain"), "plain");
  assert.equal(formatValue(null), "null");
  assert.equal(formatPercent(33.333), "33.3%");
  assert.equal(formatPercent(140), "100%");
  assert.equal(formatError({ type: "ValueError", message: "bad" }), "ValueError: bad");
  assert.equal(formatError(null), "");
  assert.equal(shortId("0193f2b4c0de4e1f8a9b0c1d2e3f4a5b"), "…3f4a5b");
});
