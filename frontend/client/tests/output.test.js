import { test } from "node:test";
import assert from "node:assert/strict";
import {
  addLogLine,
  applyChunk,
  codePointLength,
  createTaskOutput,
  dropCodePoints,
  extendSummary,
  isAfter,
  loadOutput,
  reach,
  readChunk,
  resetStreams,
  streamText,
} from "../src/output.js";

const text = (output, name = "output") => output.streams.get(name)?.text;
const chunk = (offset, value, extra = {}) => ({ stream: "output", offset, text: value, ...extra });

test("code points, not UTF-16 units: an emoji is one, a flag is two", () => {
  assert.equal(codePointLength("héllo"), 5);
  assert.equal(codePointLength("👋🏽"), 2, "a hand and its skin tone");
  assert.equal("👋🏽".length, 4);
  assert.equal(codePointLength("🇫🇷"), 2);
  assert.equal(codePointLength(""), 0);
  assert.equal(dropCodePoints("a🌍b", 2), "b");
  assert.equal(dropCodePoints("a🌍b", 0), "a🌍b");
  assert.equal(dropCodePoints("a🌍b", 9), "");
});

test("chunks apply in order when their offset is the length held", () => {
  const output = createTaskOutput();
  assert.equal(applyChunk(output, chunk(0, "Hello ")), "applied");
  assert.equal(applyChunk(output, chunk(6, "world")), "applied");
  assert.equal(text(output), "Hello world");
  assert.equal(output.streams.get("output").length, 11);
  assert.equal(output.streams.get("output").type, "text");
});

test("offsets count code points: text after emoji lines up with the server's count", () => {
  const output = createTaskOutput();
  assert.equal(applyChunk(output, chunk(0, "wörld 🌍")), "applied");
  assert.equal(output.streams.get("output").length, 7, "7 code points, though 8 UTF-16 units");
  assert.equal(applyChunk(output, chunk(8, " 👋🏽!")), "gap", "counted in UTF-16 units, the next chunk would not fit");
  assert.equal(applyChunk(output, chunk(7, " 👋🏽!")), "applied", "offset 7, not 8");
  assert.equal(text(output), "wörld 🌍 👋🏽!");
  assert.equal(output.streams.get("output").length, 11);
  assert.equal(applyChunk(output, chunk(7, " 👋🏽!")), "repeat");
  assert.equal(text(output), "wörld 🌍 👋🏽!");
});

test("a chunk below the length is a repeat, skipped; one that reaches past it adds only its tail", () => {
  const output = createTaskOutput();
  applyChunk(output, chunk(0, "abc"));
  applyChunk(output, chunk(3, "def"));
  assert.equal(applyChunk(output, chunk(0, "abc")), "repeat");
  assert.equal(applyChunk(output, chunk(3, "def")), "repeat");
  assert.equal(text(output), "abcdef", "nothing twice");
  assert.equal(applyChunk(output, chunk(4, "ef🌍g")), "applied");
  assert.equal(text(output), "abcdef🌍g");
  assert.equal(output.streams.get("output").length, 8);
});

test("a chunk past the length is a gap: nothing is applied and the caller refetches", () => {
  const output = createTaskOutput();
  applyChunk(output, chunk(0, "abc"));
  assert.equal(applyChunk(output, chunk(5, "fg")), "gap");
  assert.equal(text(output), "abc");
  assert.equal(applyChunk(output, { stream: "other", offset: 2, text: "x" }), "gap", "a new stream starts at 0");
  assert.equal(output.streams.has("other"), false);
});

test("JSON streams count items; a text chunk for a JSON stream is a disagreement to refetch", () => {
  const output = createTaskOutput();
  assert.equal(applyChunk(output, { stream: "rows", offset: 0, items: [1, { a: [2] }] }), "applied");
  assert.equal(applyChunk(output, { stream: "rows", offset: 1, items: [{ a: [2] }, "three"] }), "applied");
  const rows = output.streams.get("rows");
  assert.deepEqual(rows.items, [1, { a: [2] }, "three"]);
  assert.equal(rows.length, 3);
  assert.equal(rows.type, "json");
  assert.equal(applyChunk(output, { stream: "rows", offset: 0, items: [1] }), "repeat");
  assert.equal(applyChunk(output, { stream: "rows", offset: 3, text: "x" }), "gap");
  assert.equal(streamText(rows), '1\n{"a":[2]}\n"three"');
});

test("the chunk that meets the output limit marks its stream truncated", () => {
  const output = createTaskOutput();
  applyChunk(output, chunk(0, "abc"));
  assert.equal(applyChunk(output, chunk(3, "de", { truncated: true })), "applied");
  assert.equal(output.streams.get("output").truncated, true);
  assert.equal(text(output), "abcde");
  const empty = createTaskOutput();
  assert.equal(applyChunk(empty, chunk(0, "", { truncated: true })), "applied", "even with no text left");
  assert.equal(empty.streams.get("output").truncated, true);
});

test("malformed chunks are invalid and change nothing", () => {
  const output = createTaskOutput();
  for (const bad of [null, {}, { stream: "", offset: 0, text: "x" }, { stream: "s", offset: -1, text: "x" }, { stream: "s", offset: 0.5, text: "x" }, { stream: "s", offset: 0 }]) {
    assert.equal(applyChunk(output, bad), "invalid", JSON.stringify(bad));
  }
  assert.equal(output.streams.size, 0);
  assert.equal(readChunk({ stream: "s", offset: 0, text: "🌍" }).size, 1);
});

test("the summary is extended as the server folds it: length where the chunk ends", () => {
  let summary = extendSummary({}, chunk(0, "Héllo "));
  summary = extendSummary(summary, chunk(6, "wörld 🌍"));
  summary = extendSummary(summary, { stream: "rows", offset: 0, items: [1, 2] });
  assert.deepEqual(summary, {
    output: { type: "text", length: 13, truncated: false },
    rows: { type: "json", length: 2, truncated: false },
  });
  summary = extendSummary(summary, chunk(13, "!", { truncated: true }));
  summary = extendSummary(summary, chunk(14, "?"));
  assert.equal(summary.output.truncated, true, "truncated stays");
  assert.deepEqual(extendSummary(null, null), {});
});

test("an /output answer is the whole truth; content held as its prefix grows in place", () => {
  const output = createTaskOutput();
  applyChunk(output, chunk(0, "Hello "));
  applyChunk(output, { stream: "old", offset: 0, text: "gone" });
  const held = output.streams.get("output");
  loadOutput(output, {
    task_id: "t",
    last_event_id: "1764079200000-9",
    streams: {
      output: { type: "text", length: 12, truncated: false, text: "Hello world!" },
      rows: { type: "json", length: 2, truncated: true, items: [1, { a: 2 }] },
    },
  });
  assert.equal(output.streams.get("output"), held, "the same stream object: the view appends the rest");
  assert.equal(text(output), "Hello world!");
  assert.equal(held.length, 12);
  assert.equal(output.streams.has("old"), false);
  assert.deepEqual(output.streams.get("rows").items, [1, { a: 2 }]);
  assert.equal(output.streams.get("rows").truncated, true);
  assert.equal(output.lastEventId, "1764079200000-9");
  assert.equal(applyChunk(output, chunk(12, " 👋")), "applied", "the stream goes on from the answer's length");

  loadOutput(output, { last_event_id: "1764079200000-20", streams: { output: { type: "text", length: 3, text: "New" } } });
  assert.notEqual(output.streams.get("output"), held, "content that is not an extension is a new stream");
  assert.equal(text(output), "New");
});

test("a new attempt drops the streams and marks the log where it began", () => {
  const output = createTaskOutput();
  applyChunk(output, chunk(0, "first try"));
  addLogLine(output, { level: "error", message: "it broke" });
  resetStreams(output, 2);
  assert.equal(output.streams.size, 0);
  assert.deepEqual(
    output.logs.map((line) => [line.level, line.message]),
    [
      ["error", "it broke"],
      ["attempt", "Attempt 2"],
    ],
  );
  assert.equal(applyChunk(output, chunk(0, "second")), "applied", "offsets start again at 0");
});

test("log lines are kept to the last maxLogs, with growing keys and a known level", () => {
  const output = createTaskOutput();
  for (let i = 0; i < 12; i += 1) addLogLine(output, { level: i === 3 ? "loud" : "info", message: `line ${i}` }, { maxLogs: 5 });
  assert.equal(output.logs.length, 5);
  assert.deepEqual(
    output.logs.map((line) => line.message),
    ["line 7", "line 8", "line 9", "line 10", "line 11"],
  );
  assert.deepEqual(
    output.logs.map((line) => line.key),
    [8, 9, 10, 11, 12],
  );
  const odd = createTaskOutput();
  addLogLine(odd, { level: "loud", message: 42 });
  assert.deepEqual([odd.logs[0].level, odd.logs[0].message], ["info", "42"]);
});

test("event ids compare by time, then by number, and the reach never moves back", () => {
  assert.equal(isAfter("1764079200000-10", "1764079200000-9"), true, "not as strings");
  assert.equal(isAfter("1764079200001-0", "1764079200000-99"), true);
  assert.equal(isAfter("1764079200000-9", "1764079200000-9"), false);
  assert.equal(isAfter("1-0", null), true);
  assert.equal(isAfter(undefined, "1-0"), true, "an event without an id cannot be placed: counted as new");
  const output = createTaskOutput();
  reach(output, "5-0");
  reach(output, "4-0");
  assert.equal(output.lastEventId, "5-0");
});

test("an /output answer brings the log lines written before the row opened", () => {
  const output = createTaskOutput();
  addLogLine(output, { level: "info", message: "seen live" });
  loadOutput(output, {
    last_event_id: "1764079200000-9",
    streams: {},
    logs: [
      { at: "2026-12-02T10:00:01Z", level: "info", message: "writing 300 words" },
      { at: "2026-12-02T10:00:02Z", level: "warning", message: "half way" },
    ],
  });
  assert.deepEqual(
    output.logs.map((line) => [line.level, line.message, line.at]),
    [
      ["info", "writing 300 words", "2026-12-02T10:00:01Z"],
      ["warning", "half way", "2026-12-02T10:00:02Z"],
    ],
  );
  loadOutput(output, { last_event_id: "1764079200000-10", streams: {} });
  assert.equal(output.logs.length, 2, "an answer without logs leaves the lines held");
});
