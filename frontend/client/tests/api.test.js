import { test } from "node:test";
import assert from "node:assert/strict";
import { ApiError, createApi, describeError } from "../src/api.js";
import { makeTask, taskId } from "./helpers.js";

function jsonResponse(status, body, contentType = "application/json") {
  return new Response(body === undefined ? null : JSON.stringify(body), { status, headers: { "content-type": contentType } });
}

function recordingFetch(respond) {
  const calls = [];
  const fetch = async (url, init) => {
    calls.push({ url, init });
    return respond(url, init, calls.length);
  };
  return { fetch, calls };
}

test("requests go to the configured base URL and JSON bodies are parsed", async () => {
  const { fetch, calls } = recordingFetch(() => jsonResponse(200, [{ name: "add" }]));
  const api = createApi({ baseUrl: "https://api.example.test/", fetch });
  assert.deepEqual(await api.listKinds(), [{ name: "add" }]);
  assert.equal(calls[0].url, "https://api.example.test/api/task-kinds");
  assert.equal(api.eventsUrl({ lastEventId: "17-0" }), "https://api.example.test/api/events?last_event_id=17-0");
  assert.equal(api.eventsUrl({ lastEventId: null }), "https://api.example.test/api/events");
});

test("submit posts JSON with an Idempotency-Key", async () => {
  const task = makeTask();
  const { fetch, calls } = recordingFetch(() => jsonResponse(202, task));
  const api = createApi({ fetch });
  assert.deepEqual(await api.submit("add", { x: 1, y: 2 }, { idempotencyKey: "k-1" }), task);
  const { url, init } = calls[0];
  assert.equal(url, "/api/tasks");
  assert.equal(init.method, "POST");
  assert.deepEqual(JSON.parse(init.body), { kind: "add", params: { x: 1, y: 2 } });
  assert.equal(init.headers["Content-Type"], "application/json");
  assert.equal(init.headers["Idempotency-Key"], "k-1");
});

test("a 422 problem becomes an ApiError carrying the field errors", async () => {
  const problem = {
    type: "validation_error",
    title: "Validation failed",
    status: 422,
    detail: "params.x: Input should be a valid number",
    errors: [{ field: "params.x", message: "Input should be a valid number", type: "float_parsing" }],
  };
  const api = createApi({ fetch: async () => jsonResponse(422, problem, "application/problem+json") });
  await assert.rejects(api.submit("add", { x: "a" }), (error) => {
    assert.ok(error instanceof ApiError);
    assert.equal(error.status, 422);
    assert.equal(error.code, "validation_error");
    assert.equal(error.message, "params.x: Input should be a valid number");
    assert.deepEqual(error.fieldErrors, problem.errors);
    return true;
  });
});

test("a 409 on cancel is an ApiError with status and type", async () => {
  const api = createApi({
    fetch: async () => jsonResponse(409, { type: "conflict", title: "Conflict", status: 409, detail: "already finished" }),
  });
  await assert.rejects(api.cancel("abc"), (error) => error.status === 409 && error.code === "conflict" && error.fieldErrors.length === 0);
});

test("a network failure, a timeout and a non-JSON answer are ApiErrors too", async () => {
  const offline = createApi({ fetch: async () => Promise.reject(new TypeError("Failed to fetch")) });
  await assert.rejects(offline.listKinds(), (error) => error.status === 0 && error.code === "network_error");

  const slow = createApi({
    timeoutMs: 10,
    fetch: (url, init) => new Promise((resolve, reject) => init.signal.addEventListener("abort", () => reject(new Error("aborted")))),
  });
  await assert.rejects(slow.listKinds(), (error) => error.code === "timeout");

  const html = createApi({ fetch: async () => new Response("<!doctype html>", { status: 200, headers: { "content-type": "text/html" } }) });
  await assert.rejects(html.listKinds(), (error) => error.code === "bad_response");

  const gateway = createApi({ fetch: async () => new Response("Bad gateway", { status: 502, statusText: "Bad Gateway" }) });
  await assert.rejects(gateway.listKinds(), (error) => error.status === 502 && error.problem.detail === "Bad gateway");
});

test("a failure reads as one sentence: the detail, else the title, else the message", () => {
  assert.equal(describeError(new ApiError(503, { title: "Unavailable", detail: "Try later" })), "Try later.");
  assert.equal(describeError(new ApiError(503, { title: "Unavailable" })), "Unavailable.");
  assert.equal(describeError(new Error("Boom!")), "Boom!");
  assert.equal(describeError(undefined), "Something went wrong.");
});

test("ids in paths are encoded", async () => {
  const { fetch, calls } = recordingFetch(() => jsonResponse(200, makeTask()));
  await createApi({ fetch }).getTask("a/b?c");
  assert.equal(calls[0].url, "/api/tasks/a%2Fb%3Fc");
});

test("listRecentTasks follows next_cursor up to the cap and resumes where the first page began", async () => {
  const all = Array.from({ length: 7 }, (_, i) => makeTask({ id: taskId(100 - i), last_event_id: `${1000 + (i % 3)}-${i}` }));
  const { fetch, calls } = recordingFetch((url) => {
    const params = new URL(url, "http://x").searchParams;
    const start = Number(params.get("cursor") ?? 0);
    const limit = Number(params.get("limit"));
    const next = start + limit < all.length ? String(start + limit) : null;
    const position = `${2000 + start}-0`;
    return jsonResponse(200, { items: all.slice(start, start + limit), next_cursor: next, last_event_id: position });
  });
  const api = createApi({ fetch });
  const { items, resumeEventId } = await api.listRecentTasks({ cap: 5, pageSize: 2 });
  assert.deepEqual(items.map((t) => t.id), all.slice(0, 5).map((t) => t.id));
  assert.deepEqual(
    calls.map((c) => new URL(c.url, "http://x").search),
    ["?limit=2", "?limit=2&cursor=2", "?limit=1&cursor=4"],
  );
  assert.equal(resumeEventId, "2000-0", "the log position before the first page");
});

test("listRecentTasks stops at a null cursor and on an empty page", async () => {
  const api = createApi({ fetch: async () => jsonResponse(200, { items: [], next_cursor: "again" }) });
  assert.deepEqual(await api.listRecentTasks(), { items: [], resumeEventId: null });
});

test("every request carries credentials, so the session cookie reaches a cross-origin API", async () => {
  const { fetch, calls } = recordingFetch((url, init) =>
    init.method === "POST" && url.endsWith("/api/session") ? new Response(null, { status: 204 }) : jsonResponse(200, {}),
  );
  const api = createApi({ baseUrl: "https://api.example.test", fetch });
  await api.getSession();
  await api.signIn("k");
  await api.listKinds();
  await api.getTask("t");
  await api.submit("add", {});
  await api.cancel("t");
  await api.listTasks();
  assert.equal(calls.length, 7);
  for (const { url, init } of calls) assert.equal(init.credentials, "include", url);
});

test("the session calls: GET, POST with the key in the body (204), DELETE", async () => {
  const { fetch, calls } = recordingFetch((url, init) =>
    init.method === "GET" ? jsonResponse(200, { auth_required: true, principal: null }) : new Response(null, { status: 204 }),
  );
  const api = createApi({ fetch });
  assert.deepEqual(await api.getSession(), { auth_required: true, principal: null });
  assert.equal(await api.signIn("key-1"), null);
  assert.equal(await api.signOut(), null);
  assert.deepEqual(
    calls.map((c) => `${c.init.method} ${c.url}`),
    ["GET /api/session", "POST /api/session", "DELETE /api/session"],
  );
  assert.deepEqual(JSON.parse(calls[1].init.body), { api_key: "key-1" });
  assert.equal(calls[1].init.headers["Content-Type"], "application/json");
});

test("a refused key is a 401 ApiError carrying the server's reason", async () => {
  const api = createApi({
    fetch: async () =>
      jsonResponse(401, { type: "unauthorized", title: "Unauthorized", status: 401, detail: "the API key is not valid" }, "application/problem+json"),
  });
  await assert.rejects(api.signIn("nope"), (error) => {
    assert.equal(error.status, 401);
    assert.equal(error.code, "unauthorized");
    assert.equal(error.message, "the API key is not valid");
    return true;
  });
});

test("tags: sent with a submission when given, asked of the list and of its stream", async () => {
  const { fetch, calls } = recordingFetch(() => jsonResponse(202, makeTask()));
  const api = createApi({ fetch });
  await api.submit("add", { x: 1, y: 2 }, { idempotencyKey: "k", tags: ["user:42", "report"] });
  assert.deepEqual(JSON.parse(calls[0].init.body), { kind: "add", params: { x: 1, y: 2 }, tags: ["user:42", "report"] });
  await api.submit("add", { x: 1, y: 2 }, { tags: [] });
  assert.deepEqual(JSON.parse(calls[1].init.body), { kind: "add", params: { x: 1, y: 2 } }, "no tags, no field");
  assert.equal(api.eventsUrl({ lastEventId: "3-0", tag: "user:42" }), "/api/events?last_event_id=3-0&tag=user%3A42");
  assert.equal(api.eventsUrl({}), "/api/events", "no types: the server's defaults");
});

test("listRecentTasks passes the tag on every page", async () => {
  const { fetch, calls } = recordingFetch((url, init, n) =>
    jsonResponse(200, n === 1 ? { items: [makeTask({ id: taskId(2) })], next_cursor: taskId(2), last_event_id: "9-0" } : { items: [makeTask({ id: taskId(1) })], next_cursor: null }),
  );
  const api = createApi({ fetch });
  const { items } = await api.listRecentTasks({ pageSize: 1, tag: "a:b" });
  assert.equal(items.length, 2);
  assert.deepEqual(calls.map((call) => new URL(call.url, "http://x").searchParams.get("tag")), ["a:b", "a:b"]);
});

test("a task's output and its own stream's address", async () => {
  const answer = { task_id: taskId(1), last_event_id: "5-0", streams: {} };
  const { fetch, calls } = recordingFetch(() => jsonResponse(200, answer));
  const api = createApi({ baseUrl: "https://api.example.test", fetch });
  assert.deepEqual(await api.getOutput(taskId(1)), answer);
  assert.equal(calls[0].url, `https://api.example.test/api/tasks/${taskId(1)}/output`);
  assert.equal(api.taskEventsUrl(taskId(1), { lastEventId: "5-0" }), `https://api.example.test/api/tasks/${taskId(1)}/events?last_event_id=5-0`);
  assert.equal(api.taskEventsUrl(taskId(1)), `https://api.example.test/api/tasks/${taskId(1)}/events`);
});
