/**
 * An EventSource kept alive: on /api/events, or on /api/tasks/{id}/events (`url` gives the
 * address for a resume id).
 *
 * While the browser retries on its own (readyState CONNECTING) it sends Last-Event-ID itself, so
 * nothing is done but report "reconnecting". When it gives up (readyState CLOSED: an HTTP error,
 * a wrong content type) a new EventSource is opened after a jittered exponential backoff, passing
 * the last id seen as ?last_event_id=. A connection that does not open within `openTimeoutMs` is
 * treated the same way, so the indicator never sits on "connecting" forever.
 *
 * The server names every message (`event: <type>`), so `onmessage` never fires: one listener is
 * registered per type of the event table, and one for `reset`; with `onSnapshot`, one for
 * `snapshot` too (a task's stream sends one first when its history was trimmed). Connection
 * states: "connecting" (first attempt), "live", "reconnecting", "offline" (the browser reports no
 * network), "closed" (stopped). Each is reported to `onState` as it is reached and kept nowhere
 * here: the owner holds the one copy, so a report may repeat the last one.
 *
 * An EventSource cannot tell why it failed (a 401 looks like any other error), so each give-up is
 * reported to `onGiveUp`, whose owner may ask the API why. `beforeReconnect`, when given, is
 * awaited before each new EventSource after a give-up (a fresh token is fetched there, say), so
 * `url` can stay synchronous. `withCredentials` sends the session cookie to an API on another
 * origin.
 */

import { EVENT_TYPES } from "./event-types.js";
import { backoffDelay } from "./retry.js";

export { EVENT_TYPES };
const OPEN = 1;
const CLOSED = 2;

export function createStream({
  url,
  EventSource,
  onEvent,
  onReset,
  onSnapshot = null,
  onState = () => {},
  onGiveUp = () => {},
  beforeReconnect = null,
  withCredentials = true,
  isOnline = () => true,
  connectivity = null,
  timers = { setTimeout: globalThis.setTimeout.bind(globalThis), clearTimeout: globalThis.clearTimeout.bind(globalThis) },
  backoff = { initialMs: 1000, maxMs: 30000 },
  random = Math.random,
  openTimeoutMs = 15000,
}) {
  let source = null;
  let lastEventId = null;
  let attempt = 0;
  let everOpened = false;
  let retryTimer = null;
  let waiting = null; // the reconnect that awaits beforeReconnect
  let openTimer = null;
  let listening = false;
  let running = false;

  function report(next) {
    onState(next === "live" || next === "closed" || isOnline() ? next : "offline");
  }

  function connect() {
    clearTimers();
    closeSource();
    const es = new EventSource(url(lastEventId), { withCredentials });
    source = es;
    const mine = (handler) => (event) => {
      if (source === es) handler(event);
    };
    es.addEventListener("open", mine(handleOpen));
    es.addEventListener("error", mine(handleError));
    for (const type of EVENT_TYPES) es.addEventListener(type, mine(handleMessage));
    es.addEventListener("message", mine(handleMessage)); // an unnamed message, should one come
    es.addEventListener("reset", mine(handleReset));
    if (onSnapshot) es.addEventListener("snapshot", mine(handleSnapshot));
    armOpenTimeout();
    report(everOpened ? "reconnecting" : "connecting");
  }

  function armOpenTimeout() {
    if (openTimer !== null) return;
    const es = source;
    openTimer = timers.setTimeout(() => {
      openTimer = null;
      if (source === es && es.readyState !== OPEN) giveUp();
    }, openTimeoutMs);
  }

  function handleOpen() {
    attempt = 0;
    everOpened = true;
    if (openTimer !== null) timers.clearTimeout(openTimer);
    openTimer = null;
    report("live");
  }

  function handleError() {
    if (source.readyState === CLOSED) {
      giveUp();
      return;
    }
    armOpenTimeout(); // the browser is retrying by itself; give it as long as a first connection
    report(everOpened ? "reconnecting" : "connecting");
  }

  function giveUp() {
    closeSource();
    const delay = backoffDelay(attempt, backoff, random);
    attempt += 1;
    retryTimer = timers.setTimeout(() => {
      retryTimer = null;
      reconnect();
    }, delay);
    report("reconnecting");
    onGiveUp();
  }

  function reconnect() {
    if (!beforeReconnect) {
      connect();
      return;
    }
    const mine = {};
    waiting = mine; // stop(), start() or a reconnect when back online supersede it
    Promise.resolve()
      .then(beforeReconnect)
      .catch(() => {}) // whatever it failed at, the next connection's failure is reported as usual
      .then(() => {
        if (running && waiting === mine) connect();
      });
  }

  function remember(event) {
    if (event.lastEventId) lastEventId = event.lastEventId;
  }

  function handleMessage(event) {
    remember(event);
    const data = parse(event.data);
    if (!data || typeof data !== "object") return;
    const type = event.type === "message" ? data.type : event.type;
    if (EVENT_TYPES.includes(type)) onEvent({ ...data, type, id: data.id ?? (event.lastEventId || undefined) });
  }

  function handleReset(event) {
    remember(event);
    const data = parse(event.data) ?? {};
    if (!event.lastEventId && typeof data.last_event_id === "string") lastEventId = data.last_event_id;
    onReset(data);
  }

  function handleSnapshot(event) {
    remember(event);
    const data = parse(event.data);
    if (data && typeof data === "object") onSnapshot(data);
  }

  // Both listen only between start() and stop().
  function handleOnline() {
    if (source === null) connect(); // skip the rest of the backoff (or of beforeReconnect): the network is back
    else report(source.readyState === OPEN ? "live" : "reconnecting");
  }

  function handleOffline() {
    report("offline");
  }

  function closeSource() {
    if (source) source.close();
    source = null;
  }

  function clearTimers() {
    if (retryTimer !== null) timers.clearTimeout(retryTimer);
    if (openTimer !== null) timers.clearTimeout(openTimer);
    retryTimer = null;
    openTimer = null;
    waiting = null;
  }

  return {
    /** Opens the stream, resuming after `resumeEventId` when given. Calling it again restarts. */
    start(resumeEventId = null) {
      if (resumeEventId) lastEventId = resumeEventId;
      running = true;
      if (connectivity && !listening) {
        connectivity.addEventListener("online", handleOnline);
        connectivity.addEventListener("offline", handleOffline);
        listening = true;
      }
      connect();
    },
    stop() {
      running = false;
      clearTimers();
      closeSource();
      if (connectivity && listening) {
        connectivity.removeEventListener("online", handleOnline);
        connectivity.removeEventListener("offline", handleOffline);
        listening = false;
      }
      report("closed");
    },
    get lastEventId() {
      return lastEventId;
    },
  };
}

function parse(text) {
  try {
    return JSON.parse(text);
  } catch {
    return null;
  }
}
