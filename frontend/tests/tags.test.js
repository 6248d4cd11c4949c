import { test } from "node:test";
import assert from "node:assert/strict";
import { checkTag, MAX_TAGS, parseTags } from "../src/tags.js";

test("tags are comma separated; blanks and repeats are dropped", () => {
  assert.deepEqual(parseTags(" user:42 , report,, user:42 ,"), { tags: ["user:42", "report"], error: "" });
  assert.deepEqual(parseTags(""), { tags: [], error: "" });
  assert.deepEqual(parseTags(undefined), { tags: [], error: "" });
});

test("a tag has 1 to 64 characters of letters, digits and : _ . -", () => {
  assert.equal(checkTag("a.b-c_d:E9"), "");
  assert.match(checkTag("has space"), /not a tag/);
  assert.match(checkTag("é"), /not a tag/);
  assert.match(checkTag("x".repeat(65)), /at most 64/);
  assert.equal(checkTag("x".repeat(64)), "");
  assert.match(parseTags("ok, bad!").error, /"bad!" is not a tag/);
});

test("at most 8 tags", () => {
  const nine = Array.from({ length: MAX_TAGS + 1 }, (_, i) => `t${i}`).join(",");
  assert.match(parseTags(nine).error, /At most 8 tags/);
  assert.equal(parseTags(nine.split(",").slice(0, 8).join(",")).tags.length, 8);
});
