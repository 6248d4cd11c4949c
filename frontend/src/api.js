/**
 * REST client for the taskstream API.
 *
 * Every method resolves to parsed JSON or rejects with an ApiError. An ApiError always carries a
 * problem object shaped like the server's (type, title, status, detail, errors), so callers show
 * one kind of failure whether the server answered 4xx/5xx, the network failed (status 0,
 * type "network_error"), the request timed out ("timeout") or the answer was not JSON
 * ("bad_response").
 *
 * Every request carries credentials, so the session cookie (set by `signIn` when the API requires
 * keys) flows to an API on another origin too; the cookie itself is HttpOnly and never read here.
 */

export class ApiError extends Error {
  constructor(status, problem) {
    super(problem.detail || problem.title || `HTTP ${status}`);
    this.name = "ApiError";
    this.status = status;
    this.problem = problem;
  }

  get type() {
    return this.problem.type;
  }

  /** The 422 field errors, `[{field, message, type}]`; empty for any other error. */
  get fieldErrors() {
    return Array.isArray(this.problem.errors) ? this.problem.errors : [];
  }
}

/** A failure as one sentence for the page: the problem's detail, else its title, ending in a stop. */
export function describeError(error) {
  const problem = error?.problem;
  const text = problem?.detail || problem?.title || error?.message || "Something went wrong.";
  return /[.!?]$/.test(text) ? text : `${text}.`;
}

export const TASK_PAGE_LIMIT = 200;

export function createApi({ baseUrl = "", fetch = globalThis.fetch, timeoutMs = 15000 } = {}) {
  const root = baseUrl.replace(/\/+$/, "");
  const url = (path) => `${root}${path}`;

  async function request(method, path, { body, headers = {} } = {}) {
    const controller = new AbortController();
    const timer = setTimeout(() => controller.abort(), timeoutMs);
    const init = {
      method,
      headers: { Accept: "application/json", ...headers },
      credentials: "include",
      signal: controller.signal,
    };
    if (body !== undefined) {
      init.body = JSON.stringify(body);
      init.headers["Content-Type"] = "application/json";
    }
    let response;
    try {
      response = await fetch(url(path), init);
    } catch (error) {
      throw transportError(error, controller.signal.aborted);
    } finally {
      clearTimeout(timer);
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

  const listTasks = ({ limit = 50, cursor, state, kind, tag } = {}) =>
    request("GET", `/api/tasks${query({ limit, cursor, state, kind, tag })}`);
  const taskPath = (id) => `/api/tasks/${encodeURIComponent(id)}`;

  return {
    listKinds: () => request("GET", "/api/task-kinds"),
    listTasks,
    getTask: (id) => request("GET", taskPath(id)),
    /** `tags` are sent only when there are some, so a submission without them is as before. */
    createTask: (kind, params, { idempotencyKey, tags } = {}) =>
      request("POST", "/api/tasks", {
        body: Array.isArray(tags) && tags.length ? { kind, params, tags } : { kind, params },
        headers: idempotencyKey ? { "Idempotency-Key": idempotencyKey } : {},
      }),
    cancelTask: (id) => request("POST", `${taskPath(id)}/cancel`),
    /** `{ task_id, last_event_id, streams: {<name>: {type, length, truncated, text | items}} }`. */
    getOutput: (id) => request("GET", `${taskPath(id)}/output`),
    /** The list's stream: its default types (no output chunks, no log lines), of one tag if given. */
    eventsUrl: (lastEventId, { tag } = {}) => url(`/api/events${query({ last_event_id: lastEventId, tag })}`),
    /** One task's every event, after `lastEventId` (the `last_event_id` of its `/output`). */
    taskEventsUrl: (id, lastEventId) => url(`${taskPath(id)}/events${query({ last_event_id: lastEventId })}`),

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
  };
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
