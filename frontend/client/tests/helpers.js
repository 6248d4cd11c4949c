// Shared test doubles: fake timers, a scriptable EventSource, builders for tasks and events.

import { RULES } from "../src/event-types.js";

export function fakeTimers() {
  let now = 0;
  let nextId = 1;
  const pending = new Map();
  const schedule = (fn, ms, repeat) => {
    const id = nextId++;
    pending.set(id, { fn, at: now + ms, every: repeat ? ms : null });
    return id;
  };
  return {
    setTimeout: (fn, ms = 0) => schedule(fn, ms, false),
    clearTimeout: (id) => pending.delete(id),
    setInterval: (fn, ms) => schedule(fn, ms, true),
    clearInterval: (id) => pending.delete(id),
    get now() {
      return now;
    },
    get pending() {
      return [...pending.values()];
    },
    /** Runs every timer due within `ms`, in time order. */
    advance(ms) {
      const end = now + ms;
      for (;;) {
        const due = [...pending.entries()].filter(([, t]) => t.at <= end).sort((a, b) => a[1].at - b[1].at)[0];
        if (!due) break;
        const [id, timer] = due;
        now = timer.at;
        if (timer.every) timer.at += timer.every;
        else pending.delete(id);
        timer.fn();
      }
      now = end;
    },
  };
}

/** An EventSource whose life the test drives: open(), emit(), fail(). */
export class FakeEventSource {
  static instances = [];
  static CONNECTING = 0;
  static OPEN = 1;
  static CLOSED = 2;

  constructor(url, init = {}) {
    this.url = url;
    this.withCredentials = init.withCredentials === true;
    this.readyState = 0;
    this.listeners = new Map();
    this.closed = false;
    FakeEventSource.instances.push(this);
  }

  static reset() {
    FakeEventSource.instances = [];
  }

  static get last() {
    return FakeEventSource.instances.at(-1);
  }

  addEventListener(type, listener) {
    if (!this.listeners.has(type)) this.listeners.set(type, []);
    this.listeners.get(type).push(listener);
  }

  close() {
    this.readyState = 2;
    this.closed = true;
  }

  dispatch(type, event) {
    for (const listener of this.listeners.get(type) ?? []) listener({ type, ...event });
  }

  open() {
    this.readyState = 1;
    this.dispatch("open", {});
  }

  emit(type, data, id = data?.id ?? "") {
    this.dispatch(type, { data: typeof data === "string" ? data : JSON.stringify(data), lastEventId: id });
  }

  /** A network error: the browser retries (CONNECTING) or gives up (CLOSED). */
  fail(readyState = 0) {
    this.readyState = readyState;
    this.dispatch("error", {});
  }
}

let counter = 0;

/** A 32-hex, time-ordered task id; a larger `n` is a newer task. */
export function taskId(n) {
  return n.toString(16).padStart(32, "0");
}

export function makeTask(overrides = {}) {
  counter += 1;
  return {
    id: taskId(counter),
    kind: "add",
    params: { x: 1, y: 2 },
    state: "queued",
    progress: null,
    attempts: 0,
    result: null,
    error: null,
    created_at: "2025-11-25T14:00:00.000Z",
    started_at: null,
    finished_at: null,
    retry_at: null,
    cancel_requested: false,
    seq: 1,
    last_event_id: `1764079200000-${counter}`,
    ...overrides,
  };
}

/** An event as the stream sends it; its `state` is what the event table says its type leads to. */
export function makeEvent(task_id, seq, type, overrides = {}) {
  return {
    id: `1764079200000-${seq}`,
    task_id,
    kind: "long",
    type,
    seq,
    at: "2025-11-25T14:00:01.000Z",
    state: RULES.get(type)?.state,
    attempt: 1,
    progress: null,
    result: null,
    error: null,
    retry_at: null,
    ...(type === "queued" ? { params: { seconds: 3 } } : {}),
    ...overrides,
  };
}

export const jsonResponse = (status, body, type = "application/json") =>
  new Response(body === undefined ? null : JSON.stringify(body), { status, headers: { "content-type": type } });

export const problemResponse = (status, type, detail = type) =>
  jsonResponse(status, { type, title: type, status, detail }, "application/problem+json");

/**
 * The API as a watch sees it: `task` and `output` are what `GET /api/tasks/{id}` and its
 * `/output` answer (values, or functions of the call); `respond(call)`, when it returns a
 * Response, answers instead. Every call is kept: `{ url, method, headers, body }`.
 */
export function fakeServer({ task = null, output = null, respond = () => undefined } = {}) {
  const server = { calls: [], task, output, respond };
  server.fetch = async (url, init = {}) => {
    const call = { url, method: init.method ?? "GET", headers: init.headers ?? {}, body: init.body, credentials: init.credentials };
    server.calls.push(call);
    const answer = await server.respond(call);
    if (answer) return answer;
    const { pathname } = new URL(url, "http://api.test");
    const value = (field) => (typeof server[field] === "function" ? server[field](call) : server[field]);
    if (/^\/api\/tasks\/[^/]+\/output$/.test(pathname) && server.output) return jsonResponse(200, value("output"));
    if (/^\/api\/tasks\/[^/]+$/.test(pathname) && server.task) return jsonResponse(200, value("task"));
    return problemResponse(404, "not_found", "no such thing");
  };
  /** `"GET /api/tasks/…/output"`, one per call. */
  server.paths = () => server.calls.map((call) => `${call.method} ${new URL(call.url, "http://api.test").pathname}`);
  return server;
}
