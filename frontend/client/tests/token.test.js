import { test, beforeEach } from "node:test";
import assert from "node:assert/strict";
import { setImmediate as tick } from "node:timers/promises";
import { ApiError, createClient } from "../src/index.js";
import { createTokenSource } from "../src/token.js";
import { FakeEventSource, fakeServer, fakeTimers, jsonResponse, makeTask, problemResponse, taskId } from "./helpers.js";

const ID = taskId(1);

async function settle() {
  for (let i = 0; i < 10; i += 1) await tick();
}

/** Every REST call of the client, once each. */
async function callEverything(client) {
  const calls = [
    () => client.submit("add", { x: 1, y: 2 }, { watchToken: true }),
    () => client.listTasks({ tag: "t" }),
    () => client.listRecentTasks({ cap: 1 }),
    () => client.getTask(ID),
    () => client.getOutput(ID),
    () => client.cancel(ID),
    () => client.createTaskToken(ID, { ttlSeconds: 60 }),
    () => client.createTagToken("user:42"),
    () => client.listKinds(),
    () => client.getSession(),
  ];
  for (const call of calls) await call();
  return calls.length;
}

beforeEach(() => FakeEventSource.reset());

test("a token goes as Authorization: Bearer on every REST call and as access_token on both streams: never missing", async () => {
  const server = fakeServer({ respond: (call) => jsonResponse(200, { items: [], next_cursor: null, last_event_id: "1-0", ...makeTask({ id: ID }) }) });
  const client = createClient({ baseUrl: "https://api.example.test", token: "tok-1", fetch: server.fetch, EventSource: FakeEventSource, timers: fakeTimers(), connectivity: null });
  const count = await callEverything(client);
  assert.equal(server.calls.length, count);
  for (const call of server.calls) {
    assert.equal(call.headers.Authorization, "Bearer tok-1", call.url);
    assert.equal(new URL(call.url).searchParams.has("access_token"), false, "REST: the header only");
    assert.equal(call.credentials, "omit", "with a token, no cookies by default");
  }
  client.watchEvents({ tag: "user:42" });
  assert.equal(new URL(FakeEventSource.last.url).searchParams.get("access_token"), "tok-1");
  const watch = client.watchTask(ID, { task: makeTask({ id: ID, state: "running", seq: 1, last_event_id: "1-0" }) });
  await settle();
  const own = FakeEventSource.last;
  assert.match(own.url, new RegExp(`/api/tasks/${ID}/events\\?`));
  assert.equal(new URL(own.url).searchParams.get("access_token"), "tok-1");
  watch.stop();
});

test("without a token: no header, no access_token, and the session cookie goes along", async () => {
  const server = fakeServer({ respond: () => jsonResponse(200, { items: [], next_cursor: null, last_event_id: "1-0", ...makeTask({ id: ID }) }) });
  const client = createClient({ fetch: server.fetch, EventSource: FakeEventSource, timers: fakeTimers(), connectivity: null });
  await callEverything(client);
  for (const call of server.calls) {
    assert.equal(call.headers.Authorization, undefined);
    assert.equal(call.credentials, "include");
  }
  client.watchEvents({});
  assert.equal(FakeEventSource.last.url, "/api/events");
});

test("submit asks for a watch token only when told to; token ttl goes in the body", async () => {
  const server = fakeServer({ respond: () => jsonResponse(201, { token: "w", expires_at: "2026-01-01T00:00:00Z", scope: { task_id: ID } }) });
  const client = createClient({ fetch: server.fetch });
  await client.submit("add", { x: 1, y: 2 });
  await client.submit("add", { x: 1, y: 2 }, { watchToken: true, tags: ["a"] });
  await client.createTaskToken(ID, { ttlSeconds: 900 });
  await client.createTagToken("user:42");
  assert.deepEqual(
    server.calls.map((call) => [call.method, new URL(call.url, "http://x").pathname, JSON.parse(call.body)]),
    [
      ["POST", "/api/tasks", { kind: "add", params: { x: 1, y: 2 } }],
      ["POST", "/api/tasks", { kind: "add", params: { x: 1, y: 2 }, tags: ["a"], watch_token: true }],
      ["POST", `/api/tasks/${ID}/tokens`, { ttl_seconds: 900 }],
      ["POST", "/api/tags/user%3A42/tokens", {}],
    ],
  );
});

test("a 401 with a token function: one fresh token, the request sent once more; a string token is not retried", async () => {
  let asked = 0;
  const good = new Set(["t-2"]);
  const server = fakeServer({
    task: makeTask({ id: ID }),
    respond: (call) => (good.has(call.headers.Authorization?.slice(7)) ? undefined : problemResponse(401, "token_expired", "the token expired")),
  });
  const client = createClient({ fetch: server.fetch, token: () => `t-${++asked}` });
  assert.equal((await client.getTask(ID)).id, ID);
  assert.equal(asked, 2);
  assert.deepEqual(server.calls.map((call) => call.headers.Authorization), ["Bearer t-1", "Bearer t-2"]);
  await client.getTask(ID);
  assert.equal(asked, 2, "a token that works is kept");

  good.clear();
  await assert.rejects(client.getTask(ID), (error) => error instanceof ApiError && error.status === 401 && error.code === "token_expired");
  assert.equal(asked, 3, "refused again: one more ask, then the 401 stands");

  const fixed = createClient({ fetch: server.fetch, token: "stale" });
  const before = server.calls.length;
  await assert.rejects(fixed.getTask(ID), (error) => error.code === "token_expired");
  assert.equal(server.calls.length, before + 1);
});

test("requests refused together with one token ask the function once", async () => {
  let asked = 0;
  let release;
  const source = createTokenSource(() => new Promise((resolve) => (release = () => resolve(`t-${++asked}`))));
  const first = source.get();
  release();
  assert.equal(await first, "t-1");
  const refreshes = [source.refresh("t-1"), source.refresh("t-1"), source.refresh("t-1")];
  release();
  assert.deepEqual(await Promise.all(refreshes), ["t-2", "t-2", "t-2"]);
  assert.equal(asked, 2);
  assert.equal(await source.refresh("t-1"), "t-2", "a token refused before the last refresh is not refreshed again");
  assert.equal(asked, 2);
});

test("a token function may answer a watch token; one that fails is an ApiError saying so, never the token", async () => {
  const watchToken = createTokenSource(async () => ({ token: "w-1", expires_at: "2026-01-01T00:00:00Z", scope: { task_id: ID } }));
  assert.equal(await watchToken.get(), "w-1");
  assert.equal(createTokenSource(null), null);
  assert.equal(createTokenSource(""), null);
  assert.throws(() => createTokenSource(42), TypeError);

  const server = fakeServer({ task: makeTask({ id: ID }) });
  const failing = createClient({ fetch: server.fetch, token: async () => Promise.reject(new Error("backend down")) });
  await assert.rejects(failing.getTask(ID), (error) => {
    assert.ok(error instanceof ApiError);
    assert.equal(error.status, 0);
    assert.equal(error.code, "token_error");
    assert.match(error.message, /backend down/);
    return true;
  });
  const empty = createClient({ fetch: server.fetch, token: async () => "" });
  await assert.rejects(empty.getTask(ID), (error) => error.code === "token_error");
  assert.equal(server.calls.length, 0, "no request without a token");
});

test("the client never writes a token to the console", async () => {
  const written = [];
  const methods = ["log", "info", "warn", "error", "debug"];
  const saved = methods.map((name) => console[name]);
  for (const name of methods) console[name] = (...args) => written.push(args.join(" "));
  try {
    const server = fakeServer({ respond: () => problemResponse(401, "token_expired", "the token expired") });
    const client = createClient({ fetch: server.fetch, EventSource: FakeEventSource, timers: fakeTimers(), token: () => "secret-token", connectivity: null });
    await assert.rejects(client.getTask(ID));
    const watch = client.watchTask(ID, { onError: (error) => assert.doesNotMatch(JSON.stringify(error.problem) + error.message, /secret-token/) });
    await assert.rejects(watch.done);
  } finally {
    methods.forEach((name, i) => (console[name] = saved[i]));
  }
  assert.deepEqual(written, []);
});
