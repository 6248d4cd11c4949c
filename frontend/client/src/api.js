/**
 * REST calls to the taskstream API.
 *
 * Every method resolves to parsed JSON (null for a 204) or rejects with an ApiError. An ApiError
 * always carries a problem object shaped like the server's (type, title, status, detail, errors),
 * so callers handle one kind of failure whether the server answered 4xx/5xx, the network failed
 * (status 0, type "network_error"), the request timed out ("timeout"), the answer was not JSON
 * ("bad_response") or the token function failed ("token_error").
 *
 * Credentials: with `credentials: "include"` the session cookie (set by `signIn` when the API
 * requires keys) flows to an API on another origin too; the cookie is HttpOnly and never read
 * here. A token goes in `Authorization: Bearer`; when the API refuses it (401) and the token comes
 * from a function, the function is asked for a fresh one and the request is sent once more.
 */

export class ApiError extends Error {
  constructor(status, problem) {
    super(problem.detail || problem.title || `HTTP ${status}`);
    this.name = "ApiError";
    this.status = status;
    this.problem = problem;
  }

  /**
   * The problem's stable code ("not_found", "token_expired"...): the last segment of the type
   * URI the API sends (`/problems/not_found`), or the client's own ("network_error", "timeout",
   * "bad_response", "token_error").
   */
  get code() {
    return codeOf(this.problem.type);
  }

  /** The 422 field errors, `[{field, message, type}]`; empty for any other error. */
  get fieldErrors() {
    return Array.isArray(this.problem.errors) ? this.problem.errors : [];
  }
}

/** `/problems/not_found` (or `https://.../problems/not_found`, or `not_found`) -> `not_found`. */
export function codeOf(type) {
  return String(type ?? "").replace(/\/+$/, "").split("/").pop();
}

/** A failure as one sentence for the page: the problem's detail, else its title, ending in a stop. */
export function describeError(error) {
  const problem = error?.problem;
  const text = problem?.detail || problem?.title || error?.message || "Something went wrong.";
  return /[.!?]$/.test(text) ? text : `${text}.`;
}

export const TASK_PAGE_LIMIT = 200;

/**
 * `tokens`: a token source (`token.js`) or null. `credentials`: what `fetch` sends, and whether
 * an EventSource is opened `withCredentials` ("include").
 */
export function createApi({ baseUrl = "", fetch = globalThis.fetch, timeoutMs = 15000, credentials = "include", tokens = null } = {}) {
  const root = baseUrl.replace(/\/+$/, "");
  const url = (path) => `${root}${path}`;

  async function send(method, path, { body, headers = {} }, token) {
    const controller = new AbortController();
    const timer = setTimeout(() => controller.abort(), timeoutMs);
    const init = {
      method,
      headers: { Accept: "application/json", ...headers },
      credentials,
      signal: controller.signal,
    };
    if (token) init.headers.Authorization = `Bearer ${token}`;
    if (body !== undefined) {
      init.body = JSON.stringify(body);
      init.headers["Content-Type"] = "application/json";
    }
    try {
      return await fetch(url(path), init);
    } catch (error) {
      throw transportError(error, controller.signal.aborted);
    } finally {
      clearTimeout(timer);
    }
  }

  async function request(method, path, options = {}) {
    let token = tokens ? await tokenOf(() => tokens.get()) : null;
    let response = await send(method, path, options, token);
    if (response.status === 401 && tokens?.refreshable) {
      // The token expired or was revoked: one fresh token, one more try. A 401 was not acted on.
      const fresh = await tokenOf(() => tokens.refresh(token));
      if (fresh !== token) {
        token = fresh;
        response = await send(method, path, options, token);
      }
    }
    const payload = await readBody(response);
    if (!response.ok) throw new ApiError(response.status, problemFrom(response, payload));
    if (response.status === 204) return null;
    if (payload.kind !== "json") {
      throw new ApiError(response.status, {
        type: "bad_response",
        title: "Unexpected response",
        status: response.status,
        detail: `Expected JSON from ${path}; is the API base URL right?`,
      });
    }
    return payload.value;
  }

  const taskPath = (id) => `/api/tasks/${encodeURIComponent(id)}`;
  const tokenBody = ({ ttlSeconds } = {}) => (ttlSeconds === undefined ? {} : { ttl_seconds: ttlSeconds });
  const listTasks = ({ limit = 50, cursor, state, kind, tag } = {}) =>
    request("GET", `/api/tasks${query({ limit, cursor, state, kind, tag })}`);

  return {
    /**
     * Queues a task (202). `tags` are sent only when there are some; `watchToken: true` asks for a
     * watch token of the task in the answer (`watch_token`).
     */
    submit(kind, params, { idempotencyKey, tags, watchToken } = {}) {
      const body = { kind, params };
      if (Array.isArray(tags) && tags.length) body.tags = tags;
      if (watchToken) body.watch_token = true;
      return request("POST", "/api/tasks", { body, headers: idempotencyKey ? { "Idempotency-Key": idempotencyKey } : {} });
    },
    listTasks,
    getTask: (id) => request("GET", taskPath(id)),
    /** `{ task_id, last_event_id, streams: {<name>: {type, length, truncated, text | items}}, logs }`. */
    getOutput: (id) => request("GET", `${taskPath(id)}/output`),
    cancel: (id) => request("POST", `${taskPath(id)}/cancel`),
    /** A token that reads one task (its output and events too) until it expires. */
    createTaskToken: (id, options) => request("POST", `${taskPath(id)}/tokens`, { body: tokenBody(options) }),
    /** A token that reads every task with `tag` of the caller's. */
    createTagToken: (tag, options) => request("POST", `/api/tags/${encodeURIComponent(tag)}/tokens`, { body: tokenBody(options) }),
    listKinds: () => request("GET", "/api/task-kinds"),

    /** `{ auth_required, principal }`: whether the API needs a key, and who this browser is. */
    getSession: () => request("GET", "/api/session"),
    /** Trades an API key for the session cookie (204). The key is sent once and kept nowhere. */
    signIn: (apiKey) => request("POST", "/api/session", { body: { api_key: apiKey } }),
    signOut: () => request("DELETE", "/api/session"),

    /**
     * The newest tasks, following next_cursor until `cap` tasks. `resumeEventId` is the log's
     * position just before the first page was read: every change after the snapshot began comes
     * from the stream opened there. Events also reflected by a later page are dropped by their seq.
     */
    async listRecentTasks({ cap = 500, pageSize = TASK_PAGE_LIMIT, tag } = {}) {
      const items = [];
      const seen = new Set();
      let cursor;
      let resumeEventId = null;
      do {
        const page = await listTasks({ limit: Math.min(pageSize, cap - items.length), cursor, tag });
        const pageItems = Array.isArray(page?.items) ? page.items : [];
        if (cursor === undefined && typeof page?.last_event_id === "string") {
          resumeEventId = page.last_event_id;
        }
        for (const task of pageItems) {
          if (!seen.has(task.id)) {
            seen.add(task.id);
            items.push(task);
          }
        }
        cursor = pageItems.length > 0 ? page.next_cursor ?? null : null;
      } while (cursor && items.length < cap);
      return { items, resumeEventId };
    },

    /**
     * Every event's stream, filtered (`types` and `task` as arrays or comma-separated), after
     * `lastEventId`. Without `types` the server leaves out output chunks and log lines.
     */
    eventsUrl({ types, kind, tag, task, lastEventId } = {}, token = null) {
      return url(`/api/events${query({ last_event_id: lastEventId, types: list(types), kind, tag, task: list(task), access_token: token })}`);
    },
    /** One task's every event, after `lastEventId` (the `last_event_id` of its `/output`). */
    taskEventsUrl(id, { lastEventId, snapshot } = {}, token = null) {
      return url(`${taskPath(id)}/events${query({ last_event_id: lastEventId, snapshot: snapshot ? 1 : undefined, access_token: token })}`);
    },
    /** Whether an EventSource should be opened `withCredentials`. */
    withCredentials: credentials === "include",
  };
}

const list = (value) => (Array.isArray(value) ? value.join(",") : value);

/** The token, or an ApiError saying the token function failed. */
async function tokenOf(get) {
  try {
    return await get();
  } catch (error) {
    throw new ApiError(0, {
      type: "token_error",
      title: "No token",
      status: 0,
      detail: `The token function failed (${error?.message || "no reason given"}).`,
    });
  }
}

function query(params) {
  const search = new URLSearchParams();
  for (const [name, value] of Object.entries(params)) {
    if (value !== undefined && value !== null && value !== "") search.set(name, String(value));
  }
  const text = search.toString();
  return text ? `?${text}` : "";
}

async function readBody(response) {
  let text;
  try {
    text = await response.text();
  } catch {
    return { kind: "none" };
  }
  if (!text) return { kind: "none" };
  try {
    return { kind: "json", value: JSON.parse(text) };
  } catch {
    return { kind: "text", value: text };
  }
}

function problemFrom(response, payload) {
  const body = payload.kind === "json" && payload.value && typeof payload.value === "object" ? payload.value : {};
  const fallbackDetail = payload.kind === "text" ? payload.value.slice(0, 200) : undefined;
  return {
    type: typeof body.type === "string" ? body.type : "http_error",
    title: body.title || response.statusText || `HTTP ${response.status}`,
    status: response.status,
    detail: body.detail ?? fallbackDetail,
    ...(Array.isArray(body.errors) ? { errors: body.errors } : {}),
  };
}

function transportError(error, timedOut) {
  if (timedOut) {
    return new ApiError(0, { type: "timeout", title: "Timed out", status: 0, detail: "The server took too long to answer." });
  }
  return new ApiError(0, {
    type: "network_error",
    title: "Network error",
    status: 0,
    detail: `Could not reach the server (${error?.message || "connection failed"}).`,
  });
}
