// <taskstream-task> on jsdom: attributes start a watch, what it shows, what it tells the page,
// and that it stops, restarts and stays within its shadow root. A fake client stands in for the
// watch (the watch has tests of its own), and one test runs the real client on a fake server.

import assert from "node:assert/strict";
import { afterEach, beforeEach, describe, test } from "node:test";
import { JSDOM } from "jsdom";

import { FakeEventSource, fakeServer, makeEvent, makeTask } from "./helpers.js";

const dom = new JSDOM("<!doctype html><body></body>", { url: "http://shop.test/" });
const { window } = dom;
globalThis.HTMLElement = window.HTMLElement;
globalThis.customElements = window.customElements;
const { TaskstreamTask, progressOf } = await import("../src/element.js");
const realCreateClient = TaskstreamTask.createClient;
const document = window.document;

const settle = () => new Promise((resolve) => setTimeout(resolve, 0));

/** A client whose watches the test drives: `watches[i].handlers.onEvent(...)` and so on. */
function fakeClient() {
  const client = {
    made: [],
    watches: [],
    cancelled: [],
    watchTask(id, handlers) {
      const watch = { id, handlers, stopped: false, done: new Promise(() => {}) };
      handlers.signal.addEventListener("abort", () => (watch.stopped = true));
      client.watches.push(watch);
      return watch;
    },
    async cancel(id) {
      client.cancelled.push(id);
    },
  };
  return client;
}

let client;

beforeEach(() => {
  client = fakeClient();
  TaskstreamTask.createClient = (options) => {
    client.made.push(options);
    return client;
  };
});

afterEach(() => {
  document.body.replaceChildren();
  TaskstreamTask.createClient = realCreateClient;
});

async function mount(attributes = { "task-id": "t1", token: "tok", api: "https://api.test" }, setup = () => {}) {
  const element = document.createElement("taskstream-task");
  for (const [name, value] of Object.entries(attributes)) element.setAttribute(name, value);
  setup(element);
  document.body.append(element);
  await settle();
  return element;
}

const part = (element, name) => element.shadowRoot.querySelector(`[part~="${name}"]`);
const text = (element, name) => part(element, name).textContent;
const running = (overrides = {}) => makeTask({ id: "t1", kind: "generate", state: "running", attempts: 1, ...overrides });
const lastWatch = () => client.watches.at(-1);

describe("starting", () => {
  test("is defined once, and importing the module again does not throw", async () => {
    assert.equal(customElements.get("taskstream-task"), TaskstreamTask);
    await import("../src/element.js?again");
    assert.equal(customElements.get("taskstream-task"), TaskstreamTask);
  });

  test("watches the task of its attributes with a client for the api and token", async () => {
    await mount();
    assert.deepEqual(client.made, [{ baseUrl: "https://api.test", token: "tok" }]);
    assert.equal(client.watches.length, 1, "the three attributes start one watch");
    assert.equal(lastWatch().id, "t1");
  });

  test("properties work as the attributes do, and the token stays out of the markup", async () => {
    const element = document.createElement("taskstream-task");
    element.taskId = "t2";
    element.token = "secret-token";
    element.api = "https://api.test";
    document.body.append(element);
    await settle();
    assert.equal(lastWatch().id, "t2");
    assert.equal(client.made.at(-1).token, "secret-token");
    assert.equal(element.getAttribute("task-id"), "t2");
    assert.ok(!element.outerHTML.includes("secret-token"));
  });

  test("properties set before the element was defined are taken up", async () => {
    const early = document.createElement("taskstream-early");
    class Later extends TaskstreamTask {}
    early.taskId = "t3";
    early.token = "early-token";
    document.body.append(early);
    customElements.define("taskstream-early", Later);
    await settle();
    assert.equal(lastWatch().id, "t3");
    assert.equal(client.made.at(-1).token, "early-token");
  });

  test("an injected client is used as it is", async () => {
    const own = fakeClient();
    await mount({ "task-id": "t1" }, (element) => (element.client = own));
    assert.equal(client.made.length, 0);
    assert.equal(own.watches.length, 1);
  });

  test("without a task id nothing is watched", async () => {
    await mount({ token: "tok" });
    assert.equal(client.watches.length, 0);
  });
});

describe("stopping and restarting", () => {
  test("removing the element aborts its watch; putting it back starts another", async () => {
    const element = await mount();
    const first = lastWatch();
    element.remove();
    assert.equal(first.stopped, true);
    document.body.append(element);
    await settle();
    assert.equal(client.watches.length, 2);
    assert.equal(lastWatch().stopped, false);
  });

  test("a new task id, token or api starts afresh, and forgets the old task", async () => {
    const element = await mount();
    lastWatch().handlers.onSnapshot(running({ progress: { percent: 50 } }), outputOf("old text"));
    for (const [name, value] of [["task-id", "t9"], ["token", "tok2"], ["api", "https://other.test"]]) {
      const before = lastWatch();
      element.setAttribute(name, value);
      await settle();
      assert.equal(before.stopped, true, name);
      assert.notEqual(lastWatch(), before, name);
    }
    assert.deepEqual(client.made.at(-1), { baseUrl: "https://other.test", token: "tok2" });
    assert.equal(lastWatch().id, "t9");
    assert.equal(text(element, "badge"), "Loading");
    assert.equal(part(element, "output").textContent, "");
    assert.equal(element.task, null);
  });

  test("a stopped watch's late callbacks change nothing", async () => {
    const element = await mount();
    const old = lastWatch();
    element.setAttribute("task-id", "t9");
    await settle();
    old.handlers.onSnapshot(running(), outputOf("stale"));
    assert.equal(text(element, "badge"), "Loading");
    assert.equal(part(element, "output").textContent, "");
  });
});

function outputOf(text, name = "output") {
  return { streams: new Map([[name, { name, type: "text", text, length: text.length, items: [] }]]), logs: [], lastEventId: null };
}

describe("showing the task", () => {
  test("badge, progress bar, percent and message follow the task", async () => {
    const element = await mount();
    const progress = part(element, "progress");
    assert.equal(progress.getAttribute("role"), "progressbar");
    assert.equal(progress.getAttribute("aria-valuemin"), "0");
    assert.equal(progress.getAttribute("aria-valuemax"), "100");
    assert.ok(progress.getAttribute("aria-label"));

    const task = running({ progress: { current: 30, total: 120, percent: 25, message: "30 of 120 words" } });
    lastWatch().handlers.onSnapshot(task, outputOf(""));
    assert.equal(text(element, "badge"), "Running");
    assert.equal(part(element, "badge").dataset.state, "running");
    assert.equal(element.getAttribute("state"), "running");
    assert.equal(progress.getAttribute("aria-valuenow"), "25");
    assert.equal(progress.getAttribute("aria-valuetext"), "25%, 30 of 120 words");
    assert.equal(part(element, "bar").style.getPropertyValue("width"), "25%");
    assert.equal(text(element, "percent"), "25%");
    assert.equal(text(element, "message"), "30 of 120 words");

    const done = { ...task, state: "succeeded", result: { words: 120 }, seq: task.seq + 1 };
    lastWatch().handlers.onEnd(done);
    assert.equal(text(element, "badge"), "Succeeded");
    assert.equal(progress.getAttribute("aria-valuenow"), "100");
    assert.equal(text(element, "result"), 'Result: {"words":120}');
    assert.equal(part(element, "result").hidden, false);
    assert.equal(part(element, "error").hidden, true);
  });

  test("a running task with no progress yet is indeterminate", async () => {
    const element = await mount();
    lastWatch().handlers.onSnapshot(running({ progress: null }), outputOf(""));
    const progress = part(element, "progress");
    assert.equal(progress.hasAttribute("aria-valuenow"), false);
    assert.equal(progress.getAttribute("aria-valuetext"), "Working");
    assert.ok(progress.classList.contains("indeterminate"));
  });

  test("a failed task shows its error", async () => {
    const element = await mount();
    lastWatch().handlers.onEnd(running({ state: "failed", error: { type: "ValueError", message: "bad <b>input</b>" } }));
    assert.equal(text(element, "badge"), "Failed");
    assert.equal(text(element, "error"), "Error: ValueError: bad <b>input</b>");
    assert.equal(part(element, "error").querySelector("b"), null, "server text is never markup");
    assert.equal(part(element, "result").hidden, true);
  });

  test("the live region announces state changes, not progress ticks or output", async () => {
    const element = await mount();
    const status = element.shadowRoot.querySelector("[role=status]");
    assert.equal(status.getAttribute("aria-live"), "polite");
    const { handlers } = lastWatch();
    const announced = [];
    new window.MutationObserver((records) => {
      for (const record of records) for (const node of record.addedNodes) announced.push(node.textContent);
    }).observe(status, { childList: true });
    handlers.onSnapshot(makeTask({ id: "t1", state: "queued" }), outputOf(""));
    for (let n = 1; n <= 5; n += 1) {
      const task = running({ progress: { percent: n * 10, message: `step ${n}` } });
      handlers.onEvent(makeEvent("t1", n + 1, "progress", { progress: task.progress }), task);
      handlers.onOutput("output", "word ".repeat(n), null, task);
    }
    await settle();
    assert.deepEqual(announced, ["Task queued.", "Task running."]);
    assert.equal(part(element, "output").getAttribute("aria-live"), null);
    assert.equal(part(element, "output").getAttribute("role"), null);
  });

  test("the countdown to a retry ticks each second", async (t) => {
    t.mock.timers.enable({ apis: ["setInterval", "Date"], now: Date.parse("2025-11-25T14:00:00.000Z") });
    const element = await mount({ "task-id": "t1" });
    const task = running({ state: "retrying", attempts: 1, retry_at: "2025-11-25T14:00:05.000Z", error: { type: "RetryableError", message: "flaky" } });
    lastWatch().handlers.onEvent(makeEvent("t1", 3, "retrying", { at: "2025-11-25T14:00:00.000Z" }), task);
    assert.equal(text(element, "retry"), "Attempt 1 failed. Next try in 5 s");
    assert.equal(text(element, "error"), "Last error: RetryableError: flaky");
    t.mock.timers.tick(2000);
    assert.equal(text(element, "retry"), "Attempt 1 failed. Next try in 3 s");
    t.mock.timers.tick(4000);
    assert.equal(text(element, "retry"), "Attempt 1 failed. Next try any moment");
    lastWatch().handlers.onEvent(makeEvent("t1", 4, "started"), running({ attempts: 2 }));
    assert.equal(part(element, "retry").hidden, true);
  });

  test("the countdown runs on the server's clock", async (t) => {
    t.mock.timers.enable({ apis: ["setInterval", "Date"], now: Date.parse("2025-11-25T14:00:10.000Z") });
    const element = await mount({ "task-id": "t1" });
    // This clock runs 10 s ahead: the event was sent at 14:00:00 by the server's.
    const task = running({ state: "retrying", retry_at: "2025-11-25T14:00:04.000Z" });
    lastWatch().handlers.onEvent(makeEvent("t1", 3, "retrying", { at: "2025-11-25T14:00:00.000Z" }), task);
    assert.match(text(element, "retry"), /Next try in 4 s$/);
  });

  test("a watch that fails says why and tells the page", async () => {
    const element = await mount();
    const errors = [];
    element.addEventListener("taskstream-error", (event) => errors.push(event.detail.error));
    const error = Object.assign(new Error("x"), { problem: { detail: "The token expired" } });
    lastWatch().handlers.onError(error);
    assert.deepEqual(errors, [error]);
    assert.equal(text(element, "notice"), "The token expired.");
    assert.equal(part(element, "notice").getAttribute("role"), "alert");
  });

  test("the connection state is reflected, and a reconnect is said", async () => {
    const element = await mount();
    lastWatch().handlers.onState("reconnecting");
    assert.equal(element.getAttribute("connection"), "reconnecting");
    assert.equal(text(element, "notice"), "Reconnecting…");
    lastWatch().handlers.onState("live");
    assert.equal(part(element, "notice").hidden, true);
  });
});

describe("output", () => {
  test("is appended as it grows, never painted afresh", async () => {
    const element = await mount();
    const box = part(element, "output");
    const { handlers } = lastWatch();
    handlers.onSnapshot(running(), outputOf("Once "));
    const changes = { removed: 0, rewritten: 0 };
    new window.MutationObserver((records) => {
      for (const record of records) {
        changes.removed += record.removedNodes?.length ?? 0;
        if (record.type === "characterData" && !record.target.data.startsWith(record.oldValue)) changes.rewritten += 1;
      }
    }).observe(box, { childList: true, characterData: true, characterDataOldValue: true, subtree: true });
    let text = "Once ";
    for (const word of ["upon ", "a ", "time"]) {
      text += word;
      handlers.onOutput("output", text, { stream: "output", text: word }, running());
    }
    handlers.onOutput("thinking", "not shown", null, running());
    await settle();
    assert.equal(box.textContent, "Once upon a time");
    assert.deepEqual(changes, { removed: 0, rewritten: 0 });
    assert.equal(box.childNodes.length, 1, "short text grows one text node");
    assert.equal(box.getAttribute("tabindex"), "0", "the box scrolls from the keyboard");
  });

  test("a reload that holds the text so far shows it once, and the rest is appended", async () => {
    const element = await mount();
    const { handlers } = lastWatch();
    handlers.onSnapshot(running(), outputOf("abc"));
    handlers.onSnapshot(running(), outputOf("abcdef")); // a refetch after a gap: it extends
    assert.equal(part(element, "output").textContent, "abcdef");
    handlers.onSnapshot(running(), outputOf("xyz")); // a new attempt: replaced
    assert.equal(part(element, "output").textContent, "xyz");
  });

  test("long text is kept in text nodes of a few thousand characters", async () => {
    const element = await mount();
    const { handlers } = lastWatch();
    let text = "";
    for (let n = 0; n < 30; n += 1) {
      text += "x".repeat(500);
      handlers.onOutput("output", text, null, running());
    }
    const box = part(element, "output");
    assert.equal(box.textContent.length, 15000);
    assert.ok(box.childNodes.length >= 4 && box.childNodes.length <= 5, String(box.childNodes.length));
  });

  test("the stream attribute chooses the stream", async () => {
    const element = await mount({ "task-id": "t1", stream: "thinking" });
    lastWatch().handlers.onSnapshot(running(), outputOf("hmm", "thinking"));
    assert.equal(part(element, "output").textContent, "hmm");
    assert.equal(element.stream, "thinking");
  });

  test("the copy button copies the whole output", async () => {
    const copied = [];
    Object.defineProperty(window.navigator, "clipboard", { configurable: true, value: { writeText: async (value) => copied.push(value) } });
    const element = await mount();
    const copy = part(element, "copy");
    assert.equal(copy.hidden, true, "nothing to copy yet");
    lastWatch().handlers.onSnapshot(running(), outputOf("all of it"));
    assert.equal(copy.hidden, false);
    assert.equal(copy.localName, "button");
    assert.equal(copy.getAttribute("type"), "button");
    copy.click();
    await settle();
    assert.deepEqual(copied, ["all of it"]);
    assert.equal(copy.textContent, "Copied");
    delete window.navigator.clipboard;
  });
});

describe("telling the page", () => {
  test("each event and the end are DOM events that leave the shadow root", async () => {
    const element = await mount();
    const seen = [];
    document.body.addEventListener("taskstream-event", (event) => seen.push(["event", event.detail.event.seq, event.detail.task.state]));
    document.body.addEventListener("taskstream-end", (event) => seen.push(["end", event.detail.task.state]));
    const { handlers } = lastWatch();
    handlers.onEvent(makeEvent("t1", 2, "started"), running());
    handlers.onEvent(makeEvent("t1", 3, "succeeded"), running({ state: "succeeded" }));
    handlers.onEnd(running({ state: "succeeded" }));
    assert.deepEqual(seen, [["event", 2, "running"], ["event", 3, "succeeded"], ["end", "succeeded"]]);
    assert.equal(element.task.state, "succeeded");
  });
});

describe("tokens", () => {
  test("with a tokenProvider, the token given is used first and the provider after a refusal", async () => {
    const asked = [];
    await mount({ "task-id": "t1", token: "first" }, (element) => {
      element.tokenProvider = async (id) => {
        asked.push(id);
        return "fresh";
      };
    });
    const token = client.made.at(-1).token;
    assert.equal(typeof token, "function");
    assert.equal(await token(), "first");
    assert.equal(await token(), "fresh");
    assert.deepEqual(asked, ["t1"]);
  });
});

describe("cancel", () => {
  test("there is no cancel button by default: a watch token cannot cancel", async () => {
    const element = await mount();
    lastWatch().handlers.onSnapshot(running(), outputOf(""));
    assert.equal(part(element, "cancel").hidden, true);
  });

  test("given a canceller, an active task offers Cancel, which calls it once", async () => {
    const calls = [];
    let finish;
    const element = await mount(undefined, (el) => {
      el.canceller = (id) => {
        calls.push(id);
        return new Promise((resolve) => (finish = resolve));
      };
    });
    lastWatch().handlers.onSnapshot(running(), outputOf(""));
    const cancel = part(element, "cancel");
    assert.equal(cancel.hidden, false);
    cancel.click();
    cancel.click();
    assert.deepEqual(calls, ["t1"]);
    assert.equal(cancel.disabled, true);
    assert.equal(cancel.textContent, "Cancelling…");
    finish();
    lastWatch().handlers.onEnd(running({ state: "cancelled" }));
    assert.equal(cancel.hidden, true);
  });

  test("cancelable cancels through the client", async () => {
    const element = await mount({ "task-id": "t1", api: "https://api.test", cancelable: "" });
    lastWatch().handlers.onSnapshot(running(), outputOf(""));
    part(element, "cancel").click();
    await settle();
    assert.deepEqual(client.cancelled, ["t1"]);
  });
});

describe("styles", () => {
  test("every part is there, and nothing in the shadow root has a style attribute but the bar", async () => {
    const element = await mount();
    lastWatch().handlers.onSnapshot(running({ progress: { percent: 40 } }), outputOf("x"));
    for (const name of ["badge", "progress", "bar", "percent", "message", "output", "copy", "cancel", "result", "error", "retry", "notice"]) {
      assert.ok(part(element, name), name);
    }
    const styled = [...element.shadowRoot.querySelectorAll("[style]")].map((node) => node.getAttribute("part"));
    assert.deepEqual(styled, ["bar"]); // set through the CSSOM, which CSP allows
    assert.equal(element.hasAttribute("style"), false);
    assert.equal(document.head.querySelectorAll("style").length, 0, "no global styles");
  });

  test("a constructable stylesheet is adopted where the browser has them", async () => {
    class Sheet {
      replaceSync(css) {
        this.css = css;
      }
    }
    const original = window.CSSStyleSheet;
    window.CSSStyleSheet = Sheet;
    Object.defineProperty(window.ShadowRoot.prototype, "adoptedStyleSheets", { configurable: true, writable: true, value: [] });
    try {
      const element = await mount();
      assert.equal(element.shadowRoot.querySelector("style"), null);
      const [sheet] = element.shadowRoot.adoptedStyleSheets;
      assert.ok(sheet instanceof Sheet);
      assert.match(sheet.css, /--taskstream-accent/);
      const other = await mount();
      assert.equal(other.shadowRoot.adoptedStyleSheets[0], sheet, "one sheet for every element");
    } finally {
      delete window.ShadowRoot.prototype.adoptedStyleSheets;
      window.CSSStyleSheet = original;
    }
  });

  test("elsewhere a style element inside the shadow root is the fallback", async () => {
    const element = await mount();
    assert.match(element.shadowRoot.querySelector("style").textContent, /--taskstream-radius/);
  });
});

describe("with the real client", () => {
  test("follows a task from its output to its end", async () => {
    const task = makeTask({ id: "t1", kind: "generate", state: "running", attempts: 1, seq: 3, last_event_id: "1764079200000-3" });
    const server = fakeServer({
      task,
      output: { task_id: "t1", streams: { output: { type: "text", text: "Hello ", length: 6, truncated: false } }, last_event_id: "1764079200000-3" },
    });
    FakeEventSource.reset();
    TaskstreamTask.createClient = (options) => realCreateClient({ ...options, fetch: server.fetch, EventSource: FakeEventSource, connectivity: null });
    const element = await mount();
    const seqs = [];
    element.addEventListener("taskstream-event", (event) => seqs.push(event.detail.event.seq));
    await until(() => FakeEventSource.last);
    const source = FakeEventSource.last;
    assert.match(source.url, /^https:\/\/api\.test\/api\/tasks\/t1\/events\?last_event_id=1764079200000-3&access_token=tok$/);
    assert.equal(server.calls[0].headers.Authorization, "Bearer tok");
    source.open();
    source.emit("output", makeEvent("t1", 4, "output", { output: { stream: "output", offset: 6, text: "world" } }));
    source.emit("progress", makeEvent("t1", 5, "progress", { progress: { current: 1, total: 1, percent: 100, message: "done" } }));
    source.emit("succeeded", makeEvent("t1", 6, "succeeded", { result: { words: 2 } }));
    await until(() => element.getAttribute("state") === "succeeded");
    assert.equal(part(element, "output").textContent, "Hello world");
    assert.deepEqual(seqs, [4, 5, 6]);
    assert.equal(text(element, "result"), 'Result: {"words":2}');
    assert.equal(source.closed, true);
  });
});

describe("formatting", () => {
  test("countdowns and progress", () => {
    assert.deepEqual(progressOf({ state: "queued", progress: null }), { percent: 0, message: "" });
    assert.deepEqual(progressOf({ state: "running", progress: { current: 1, total: 4 } }), { percent: 25, message: "" });
    assert.deepEqual(progressOf({ state: "succeeded", progress: { percent: 80 } }), { percent: 100, message: "" });
  });
});

async function until(check) {
  for (let n = 0; n < 200; n += 1) {
    const value = check();
    if (value) return value;
    await settle();
  }
  throw new Error("timed out");
}
