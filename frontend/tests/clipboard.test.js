import { test } from "node:test";
import assert from "node:assert/strict";
import { JSDOM } from "jsdom";
import { createClipboard } from "../src/clipboard.js";

test("the Clipboard API is used where there is one", async () => {
  const written = [];
  const clipboard = createClipboard({ navigator: { clipboard: { writeText: async (text) => written.push(text) } }, document: null });
  assert.equal(await clipboard.copy("a🌍b"), true);
  assert.deepEqual(written, ["a🌍b"]);
});

test("without it, or when it refuses, a hidden textarea is copied and removed, and focus stays", async () => {
  const { document } = new JSDOM("<!doctype html><body><button id=b>Copy</button></body>").window;
  const copied = [];
  document.execCommand = (command) => {
    copied.push([command, document.activeElement.value]);
    return true;
  };
  const button = document.getElementById("b");
  button.focus();
  const refusing = { clipboard: { writeText: async () => Promise.reject(new Error("denied")) } };
  assert.equal(await createClipboard({ navigator: refusing, document }).copy("text"), true);
  assert.equal(await createClipboard({ navigator: {}, document }).copy("more"), true);
  assert.deepEqual(copied, [["copy", "text"], ["copy", "more"]]);
  assert.equal(document.querySelector("textarea"), null);
  assert.equal(document.activeElement, button);
  document.execCommand = () => false;
  assert.equal(await createClipboard({ navigator: {}, document }).copy("x"), false, "says when it could not");
});
