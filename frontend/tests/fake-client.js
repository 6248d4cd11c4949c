// The client as the page's tests give it: REST calls from plain async functions, the list's
// stream recorded, and real task watches over those same calls on a FakeEventSource.

import { createApi } from "../client/src/api.js";
import { createTaskWatch } from "../client/src/watch-task.js";
import { FakeEventSource } from "../client/tests/helpers.js";

const urls = createApi({ baseUrl: "", fetch: async () => new Response("{}") });

/**
 * `rest`: `{ getSession, listKinds, listRecentTasks, getTask, getOutput, submit, cancel, ... }`.
 * `streams`: one entry per `watchEvents`, `{ handlers, started: [lastEventId], stopped }`. Each
 * `watchTask` opens FakeEventSources (`FakeEventSource.instances`, reset here).
 */
export function pageClient(rest, { timers }) {
  FakeEventSource.reset();
  const streams = [];
  const env = {
    api: { ...rest, taskEventsUrl: urls.taskEventsUrl, withCredentials: true },
    tokens: null,
    EventSource: FakeEventSource,
    timers,
    random: () => 1,
    backoff: { initialMs: 1000, maxMs: 30000 },
    openTimeoutMs: 15000,
    connectivity: null,
    isOnline: () => true,
  };
  const client = {
    ...rest,
    watchEvents(handlers) {
      const stream = { handlers, started: [handlers.lastEventId ?? null], stopped: undefined, stop: () => (stream.stopped = true) };
      streams.push(stream);
      return stream;
    },
    watchTask: (id, options) => createTaskWatch(env, id, options),
  };
  return { client, streams };
}
