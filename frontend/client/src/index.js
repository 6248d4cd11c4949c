/**
 * taskstream's JavaScript client: REST calls that fail one way (`ApiError`), and watches that
 * follow a task (`watchTask`) or every event (`watchEvents`) through reconnects, gaps and resets.
 * No dependencies; runs unbundled as ES modules, or as `dist/taskstream.js`.
 *
 * Errors: every REST failure is an `ApiError` (`status`, `code`, `problem`, `fieldErrors`), with
 * status 0 when no answer came (`network_error`, `timeout`, `token_error`).
 */

import { createApi } from "./api.js";
import { createTokenSource } from "./token.js";
import { createEventsWatch } from "./watch-events.js";
import { createTaskWatch } from "./watch-task.js";

export { ApiError, codeOf, describeError, TASK_PAGE_LIMIT } from "./api.js";
export { MAX_GAP_SYNCS, worthRetrying } from "./watch-task.js";
// The pieces the watches are made of, for a page that keeps state of its own (ours does).
export {
  ACTIVE_STATES,
  applyEventToOutput,
  applyEventToTask,
  EVENT_TYPES,
  FINAL_STATES,
  normalizeTask,
  OUTPUT_LOG_STATES,
  OUTPUT_LOG_TYPES,
  RULES,
  ruleFor,
} from "./event-types.js";
export { codePointLength, createTaskOutput, isAfter, loadOutput, MAX_LOG_LINES, streamText } from "./output.js";
export { backoffDelay, createRetrying } from "./retry.js";
export { createStream } from "./stream.js";

const TIMERS = Object.freeze({
  setTimeout: (fn, ms) => globalThis.setTimeout(fn, ms),
  clearTimeout: (id) => globalThis.clearTimeout(id),
});

/**
 * A client of one API. `token`: a watch token or an API key, or a function (async or not) that
 * gives a fresh one; it is sent as `Authorization: Bearer` and, on the event streams, as
 * `?access_token=`. `credentials` defaults to "omit" with a token and "include" without one (a
 * session cookie). `fetch`, `EventSource`, `timers` and `random` are injectable.
 */
export function createClient({
  baseUrl = "",
  token = null,
  credentials,
  fetch = globalThis.fetch,
  EventSource = globalThis.EventSource,
  timeoutMs = 15000,
  backoff = { initialMs: 1000, maxMs: 30000 },
  openTimeoutMs = 15000,
  timers = TIMERS,
  random = Math.random,
  connectivity = typeof window === "object" && typeof window?.addEventListener === "function" ? window : null,
  isOnline = () => globalThis.navigator?.onLine !== false,
} = {}) {
  const tokens = createTokenSource(token);
  const api = createApi({ baseUrl, fetch, timeoutMs, credentials: credentials ?? (tokens ? "omit" : "include"), tokens });
  const env = { api, tokens, EventSource, timers, random, backoff, openTimeoutMs, connectivity, isOnline };
  return {
    submit: api.submit,
    listTasks: api.listTasks,
    listRecentTasks: api.listRecentTasks,
    getTask: api.getTask,
    getOutput: api.getOutput,
    cancel: api.cancel,
    createTaskToken: api.createTaskToken,
    createTagToken: api.createTagToken,
    listKinds: api.listKinds,
    getSession: api.getSession,
    signIn: api.signIn,
    signOut: api.signOut,
    watchTask: (id, options) => createTaskWatch(env, id, options),
    watchEvents: (options) => createEventsWatch(env, options),
  };
}

/** `createClient(options).watchTask(id, options)`, or on `options.client` when given. */
export function watchTask(id, options = {}) {
  return (options.client ?? createClient(options)).watchTask(id, options);
}

/** `createClient(options).watchEvents(options)`, or on `options.client` when given. */
export function watchEvents(options = {}) {
  return (options.client ?? createClient(options)).watchEvents(options);
}
