import { test } from "node:test";
import assert from "node:assert/strict";
import { JSDOM } from "jsdom";
import { appendText, h, setAttr, setFlag, setProp, setText, showText } from "../src/dom.js";

const { document, MutationObserver } = new JSDOM("<!doctype html><body></body>").window;

/** The mutations `change(element)` causes on a fresh paragraph (after `prepare`). */
function mutations(change, prepare = () => {}) {
  const element = document.createElement("p");
  document.body.replaceChildren(element);
  prepare(element);
  const observer = new MutationObserver(() => {});
  observer.observe(element, { attributes: true, childList: true, characterData: true, subtree: true });
  change(element);
  const records = observer.takeRecords();
  observer.disconnect();
  return { element, count: records.length };
}

test("h sets attributes and text without parsing markup", () => {
  const node = h(document, "p", { class: "x", "data-id": 7, text: "<b>hi</b>", hidden: true, title: null, open: false });
  assert.equal(node.outerHTML, '<p class="x" data-id="7" hidden="">&lt;b&gt;hi&lt;/b&gt;</p>');
});

test("h appends children, strings as text, skipping the empty ones", () => {
  const node = h(document, "div", {}, "a<i>", null, [h(document, "span", { text: "b" }), false], undefined, "c");
  assert.equal(node.innerHTML, "a&lt;i&gt;<span>b</span>c");
});

test("the setters write only what differs", () => {
  assert.equal(mutations((p) => setText(p, "same"), (p) => (p.textContent = "same")).count, 0);
  assert.equal(mutations((p) => setText(p, "new")).element.textContent, "new");
  assert.equal(mutations((p) => setAttr(p, "aria-busy", "true"), (p) => p.setAttribute("aria-busy", "true")).count, 0);
  assert.equal(mutations((p) => setAttr(p, "aria-busy", "false")).element.getAttribute("aria-busy"), "false");
  assert.equal(mutations((p) => setProp(p, "hidden", true), (p) => (p.hidden = true)).count, 0);
  assert.equal(mutations((p) => setProp(p, "hidden", true)).element.hidden, true);
});

test("showText hides the element while it has no text", () => {
  const { element } = mutations((p) => showText(p, "Required"));
  assert.equal(element.textContent, "Required");
  assert.equal(element.hidden, false);
  showText(element, "");
  assert.equal(element.textContent, "");
  assert.equal(element.hidden, true);
});

test("setFlag sets an attribute to true while on and removes it when off", () => {
  const { element } = mutations((p) => setFlag(p, "aria-invalid", true));
  assert.equal(element.getAttribute("aria-invalid"), "true");
  setFlag(element, "aria-invalid", false);
  assert.equal(element.hasAttribute("aria-invalid"), false);
  assert.equal(mutations((p) => setFlag(p, "aria-invalid", false)).count, 0, "nothing to remove");
  assert.equal(mutations((p) => setFlag(p, "aria-invalid", true), (p) => p.setAttribute("aria-invalid", "true")).count, 0);
});

test("appendText adds to the end: the last node grows while short, then a new one starts", () => {
  const element = document.createElement("pre");
  appendText(element, "abc");
  appendText(element, "def");
  assert.equal(element.childNodes.length, 1);
  const first = element.firstChild;
  appendText(element, "x".repeat(10), { nodeLimit: 12 });
  assert.equal(element.childNodes.length, 2, "past the limit, a new node");
  assert.equal(element.firstChild, first);
  assert.equal(element.textContent, `abcdef${"x".repeat(10)}`);
  appendText(element, "");
  assert.equal(element.childNodes.length, 2, "nothing for nothing");
});
