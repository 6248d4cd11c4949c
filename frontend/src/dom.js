/**
 * The few DOM helpers that the builders (`templates.js`) and the view share. Values go in as text
 * nodes and attribute values, never as markup. The setters write only what differs, so a repaint
 * that changes nothing mutates nothing: no layout work, and focus and selection stay put.
 */

/** `h(doc, "p", { class: "x", text: "hi" }, child...)`: attributes by setAttribute, text by text node. */
export function h(doc, tag, attributes = {}, ...children) {
  const element = doc.createElement(tag);
  for (const [name, value] of Object.entries(attributes)) {
    if (value === undefined || value === null || value === false) continue;
    if (name === "text") element.textContent = String(value);
    else element.setAttribute(name, value === true ? "" : String(value));
  }
  for (const child of children.flat()) {
    if (child === null || child === undefined || child === false) continue;
    element.append(typeof child === "string" ? doc.createTextNode(child) : child);
  }
  return element;
}

export function setText(element, text) {
  if (element.textContent !== text) element.textContent = text;
}

export function setAttr(element, name, value) {
  if (element.getAttribute(name) !== value) element.setAttribute(name, value);
}

export function setProp(element, name, value) {
  if (element[name] !== value) element[name] = value;
}

/** An element that is shown only while it has something to say (an error, a note). */
export function showText(element, text) {
  setText(element, text);
  setProp(element, "hidden", !text);
}

/** A flag attribute such as aria-invalid: "true" while `on`, absent otherwise. */
export function setFlag(element, name, on) {
  if (on) setAttr(element, name, "true");
  else if (element.hasAttribute(name)) element.removeAttribute(name);
}

/**
 * Appends `text` at the end of `element` without touching what it shows already: the last text
 * node grows while it is short, then a new one starts, so a long answer is a few thousand-character
 * nodes rather than one per chunk or one huge node rewritten.
 */
export function appendText(element, text, { nodeLimit = 4096 } = {}) {
  if (!text) return;
  const last = element.lastChild;
  if (last && last.nodeType === 3 && last.length + text.length <= nodeLimit) last.appendData(text);
  else element.append(element.ownerDocument.createTextNode(text));
}
