// Sessions end to end in one process: the real client (REST and streams), store and controller,
// against a scripted API that keeps a session "cookie" the way the real one does.

import { test, beforeEach } from "node:test";
import assert from "node:assert/strict";
import { setImmediate as tick } from "node:timers/promises";
import { createClient } from "../client/src/index.js";
import { createController, SESSION_ENDED_NOTE, SIGNED_OUT_NOTE } from "../src/controller.js";
import { createStore } from "../src/store.js";
import { FakeEventSource, fakeTimers, makeEvent, makeTask, taskId } from "../client/tests/helpers.js";

const KEY = "key-alice-0123456789";
const KINDS = [
  {
    name: "add",
    title: "Add two numbers",
    description: "",
    params_schema: { type: "object", properties: { x: { type: "number" }, y: { type: "number" } }, required: ["x", "y"] },
  },
];

const json = (status, body, type = "application/json") =>
  new Response(body === undefined ? null : JSON.stringify(body), { status, headers: { "content-type": type } });
const problem = (status, type, detail) => json(status, { type, title: type, status, detail }, "application/problem+json");

/** The API as far as the page sees it: `principal` is who the browser's cookie says it is. */
function fakeApi({ authRequired = true, keys = { [KEY]: "alice" }, tasks = [] } = {}) {
  const server = { authRequired, principal: null, calls: [], tasks, keepCookie: true, failSignOut: false };
  server.fetch = async (url, init = {}) => {
    const method = init.method ?? "GET";
    const { pathname } = new URL(url);
    server.calls.push({ url, method, init });
    if (pathname === "/api/session") {
      if (method === "GET") return json(200, { auth_required: server.authRequired, principal: server.authRequired ? server.principal : null });
      if (method === "POST") {
        const principal = keys[JSON.parse(init.body).api_key];
        if (!principal) return problem(401, "unauthorized", "the API key is not valid");
        if (server.keepCookie) server.principal = principal;
        return new Response(null, { status: 204 });
      }
      if (server.failSignOut) throw new TypeError("Failed to fetch");
      server.principal = null;
      return new Response(null, { status: 204 });
    }
    if (server.authRequired && !server.principal) return problem(401, "unauthorized", "send an API key (Authorization: Bearer <key>) or sign in");
    if (pathname === "/api/task-kinds") return json(200, KINDS);
    if (pathname === "/api/tasks" && method === "GET") return json(200, { items: server.tasks, next_cursor: null, last_event_id: "100-0" });
    if (pathname === "/api/tasks" && method === "POST") return json(202, makeTask({ id: taskId(50), params: JSON.parse(init.body).params }));
    return problem(404, "not_found", "no such thing");
  };
  /** What the server's session cookie expiring looks like from the page. */
  server.expire = () => (server.principal = null);
  server.paths = () => server.calls.map((c) => `${c.method} ${new URL(c.url).pathname}`);
  return server;
}

function setup(options) {
  const server = fakeApi(options);
  const timers = fakeTimers();
  const store = createStore();
  const client = createClient({
    baseUrl: "http://api.test",
    credentials: "include",
    fetch: (url, init) => server.fetch(url, init),
    EventSource: FakeEventSource,
    timers,
    random: () => 1,
    connectivity: null,
  });
  const controller = createController({ client, store, timers, random: () => 1 });
  return { server, timers, store, controller, session: () => store.state.session };
}

/** Lets every pending promise chain (fetch, body reads, handlers) run to its end. */
async function settle() {
  for (let i = 0; i < 20; i += 1) await tick();
}

beforeEach(() => FakeEventSource.reset());

test("when the API needs a key and the browser has no session, only the sign-in is shown", async () => {
  const { server, controller, session } = setup();
  await controller.start();
  await settle();
  assert.deepEqual(server.paths(), ["GET /api/session"], "no tasks, kinds or stream are asked for");
  assert.equal(FakeEventSource.instances.length, 0);
  assert.equal(session().phase, "signed-out");
  assert.equal(session().required, true);
  assert.equal(session().focus, "key", "the key input gets focus");
});

test("when the API needs no key, the page loads as before and shows no account", async () => {
  const { server, store, controller, session } = setup({ authRequired: false });
  await controller.start();
  await settle();
  assert.equal(session().phase, "open");
  assert.equal(session().required, false);
  assert.deepEqual(server.paths().slice(0, 1), ["GET /api/session"], "the session is asked first");
  assert.ok(server.paths().includes("GET /api/tasks"));
  assert.equal(store.state.kinds.length, 1);
  assert.equal(FakeEventSource.instances.length, 1);
});

test("a browser already signed in loads at once and knows who it is", async () => {
  const { server, controller, session } = setup({ tasks: [makeTask({ id: taskId(3) })] });
  server.principal = "alice";
  await controller.start();
  await settle();
  assert.equal(session().phase, "signed-in");
  assert.equal(session().principal, "alice");
  assert.equal(FakeEventSource.instances.length, 1);
});

test("signing in trades the key once, then loads tasks and opens the stream with credentials", async () => {
  const { server, store, controller, session } = setup({ tasks: [makeTask({ id: taskId(3) })] });
  await controller.start();
  await controller.handlers.signIn(`  ${KEY}\n`);
  await settle();
  const posts = server.calls.filter((c) => c.method === "POST");
  assert.equal(posts.length, 1);
  assert.deepEqual(JSON.parse(posts[0].init.body), { api_key: KEY }, "sent trimmed, in the body");
  assert.deepEqual(server.paths().slice(0, 3), ["GET /api/session", "POST /api/session", "GET /api/session"]);
  assert.equal(session().phase, "signed-in");
  assert.equal(session().principal, "alice");
  assert.equal(session().focus, "app");
  assert.deepEqual(store.state.order, [taskId(3)]);
  assert.ok(server.calls.every((c) => c.init.credentials === "include"), "every fetch carries credentials");
  assert.equal(FakeEventSource.instances.length, 1);
  assert.equal(FakeEventSource.last.withCredentials, true);
  assert.equal(FakeEventSource.last.url, "http://api.test/api/events?last_event_id=100-0");
  assert.ok(!server.calls.some((c) => c.url.includes(KEY)), "the key is never in a URL");
  assert.ok(!JSON.stringify(session()).includes(KEY), "the key is not kept in the store");
});

test("a wrong key shows the server's reason and loads nothing", async () => {
  const { server, store, controller, session } = setup();
  await controller.start();
  await controller.handlers.signIn("not-a-key");
  await settle();
  assert.equal(session().phase, "signed-out");
  assert.equal(session().pending, null);
  assert.equal(session().error, "The API key is not valid.");
  assert.equal(session().focus, "key");
  assert.deepEqual(server.paths(), ["GET /api/session", "POST /api/session"]);
  assert.equal(store.state.tasks.size, 0);
  assert.equal(FakeEventSource.instances.length, 0);
  assert.ok(!JSON.stringify(session()).includes("not-a-key"));

  await controller.handlers.signIn(KEY);
  await settle();
  assert.equal(session().phase, "signed-in");
  assert.equal(session().error, "");
});

test("an empty key asks for one without a request", async () => {
  const { server, controller, session } = setup();
  await controller.start();
  await controller.handlers.signIn("   ");
  assert.equal(session().error, "Enter your API key.");
  assert.deepEqual(server.paths(), ["GET /api/session"]);
});

test("a key accepted while the browser drops the cookie is reported, not looped on", async () => {
  const { server, controller, session } = setup();
  server.keepCookie = false; // what a cross-site page sees with a SameSite=Strict cookie
  await controller.start();
  await controller.handlers.signIn(KEY);
  await settle();
  assert.equal(session().phase, "signed-out");
  assert.match(session().error, /did not keep the session cookie/);
  assert.ok(!server.paths().includes("GET /api/tasks"));
});

test("a 401 mid-session closes the stream, forgets the tasks and asks to sign in again", async () => {
  const { server, store, controller, session } = setup({ tasks: [makeTask({ id: taskId(3) })] });
  server.principal = "alice";
  await controller.start();
  await settle();
  const source = FakeEventSource.last;
  source.open();
  assert.equal(store.state.tasks.size, 1);

  server.expire();
  await controller.handlers.submit("add", { x: "1", y: "2" });
  await settle();
  assert.equal(source.closed, true, "the stream is closed");
  assert.equal(session().phase, "signed-out");
  assert.equal(session().note, SESSION_ENDED_NOTE);
  assert.equal(store.state.tasks.size, 0, "the store is cleared");
  assert.equal(store.state.kinds.length, 0);
  assert.equal(store.state.forms.size, 0, "no form error is left behind");
  assert.equal(store.state.log.length, 0);

  const before = server.calls.length;
  await controller.handlers.signIn(KEY);
  await settle();
  assert.equal(session().phase, "signed-in");
  assert.equal(session().note, "");
  assert.equal(store.state.tasks.size, 1, "loaded again");
  assert.equal(FakeEventSource.instances.length, 2, "a fresh stream");
  assert.ok(server.calls.length > before);
});

test("when the stream gives up and the session is gone, the sign-in comes back", async () => {
  const { server, controller, session } = setup();
  server.principal = "alice";
  await controller.start();
  await settle();
  const source = FakeEventSource.last;
  source.open();
  server.expire();
  source.fail(2); // an EventSource sees a 401 as a plain failure
  await settle();
  assert.equal(session().phase, "signed-out");
  assert.equal(session().note, SESSION_ENDED_NOTE);
  assert.equal(source.closed, true);
});

test("when the stream gives up but the session holds, it just reconnects", async () => {
  const { server, timers, controller, session } = setup();
  server.principal = "alice";
  await controller.start();
  await settle();
  FakeEventSource.last.fail(2);
  await settle();
  assert.equal(session().phase, "signed-in");
  assert.equal(server.paths().filter((p) => p === "GET /api/session").length, 2, "the session was checked");
  timers.advance(2000);
  assert.equal(FakeEventSource.instances.length, 2);
  assert.equal(FakeEventSource.last.withCredentials, true);
});

test("signing out deletes the session, closes the stream and clears the store", async () => {
  const { server, store, controller, session } = setup({ tasks: [makeTask({ id: taskId(3), state: "running" })] });
  server.principal = "alice";
  await controller.start();
  await settle();
  const source = FakeEventSource.last;
  source.open();
  source.emit("progress", makeEvent(taskId(3), 2, "progress", { id: "101-0" }));
  assert.ok(store.state.log.length > 0);

  await controller.handlers.signOut();
  assert.ok(server.paths().includes("DELETE /api/session"));
  assert.equal(server.principal, null);
  assert.equal(source.closed, true);
  assert.equal(session().phase, "signed-out");
  assert.equal(session().principal, null);
  assert.equal(session().note, SIGNED_OUT_NOTE);
  assert.equal(store.state.tasks.size, 0);
  assert.equal(store.state.log.length, 0);
  source.emit("progress", makeEvent(taskId(3), 3, "progress", { id: "102-0" }));
  assert.equal(store.state.tasks.size, 0, "a late event of the closed stream changes nothing");
});

test("a sign-out that does not reach the server keeps the session and says so", async () => {
  const { server, store, controller, session } = setup();
  server.principal = "alice";
  await controller.start();
  await settle();
  server.failSignOut = true;
  await controller.handlers.signOut();
  assert.equal(session().phase, "signed-in");
  assert.equal(session().pending, null);
  assert.match(store.state.log.at(-1).message, /Couldn't sign out: Could not reach the server/);
  assert.equal(FakeEventSource.last.closed, false);
});

test("answers to requests of an ended session are dropped", async () => {
  const { server, store, controller, session } = setup();
  server.principal = "alice";
  let release;
  const slow = server.fetch;
  server.fetch = async (url, init) => {
    if (new URL(url).pathname === "/api/tasks" && (init.method ?? "GET") === "GET") await new Promise((r) => (release = r));
    return slow(url, init);
  };
  const started = controller.start();
  await settle();
  assert.equal(typeof release, "function", "the task list is still loading");
  await controller.handlers.signOut();
  server.principal = "alice"; // the old request now gets an answer as if signed in
  release();
  await started;
  await settle();
  assert.equal(session().phase, "signed-out");
  assert.equal(store.state.tasks.size, 0);
  assert.equal(FakeEventSource.instances.length, 0, "no stream opened for the ended session");
});

test("a session check that fails is shown and retried; an API without sessions needs no key", async () => {
  const { server, timers, store, controller, session } = setup({ authRequired: false });
  const real = server.fetch;
  let down = true;
  server.fetch = async (url, init) => {
    if (down) throw new TypeError("Failed to fetch");
    return real(url, init);
  };
  await controller.start();
  assert.equal(session().phase, "checking");
  assert.match(store.state.tasksStatus.message, /Couldn't reach the server: .* Trying again in 2 s\./);
  down = false;
  timers.advance(2000);
  await settle();
  assert.equal(session().phase, "open");
  assert.equal(store.state.tasksStatus.phase, "ready");

  const old = setup({ authRequired: false });
  const answer = old.server.fetch;
  old.server.fetch = async (url, init) =>
    new URL(url).pathname === "/api/session" ? problem(404, "not_found", "Not Found") : answer(url, init);
  await old.controller.start();
  await settle();
  assert.equal(old.session().phase, "open");
  assert.equal(old.store.state.kinds.length, 1);
});

test("an API that starts asking for keys while the page is open brings up the sign-in", async () => {
  const { server, store, controller, session } = setup({ authRequired: false });
  await controller.start();
  await settle();
  assert.equal(session().phase, "open");
  server.authRequired = true;
  await controller.handlers.submit("add", { x: "1", y: "2" });
  assert.equal(session().phase, "signed-out");
  assert.equal(session().note, "The server now asks for an API key; sign in.");
  assert.equal(store.state.tasks.size, 0);
  assert.equal(FakeEventSource.last.closed, true);
});
