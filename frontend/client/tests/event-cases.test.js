// The shared cases (tests/cases/events.json) run against the client's fold, and through a watch
// fed by a task's stream: the backend's fold and the event log's scripts are held to the same
// file, so all of them agree on what events do.
import { test, beforeEach } from "node:test";
import assert from "node:assert/strict";
import { assertTask, cases as file, logged } from "./event-cases.js";
import { setImmediate as tick } from "node:timers/promises";
import { applyEventToTask, createClient } from "../src/index.js";
import { FakeEventSource, fakeServer, fakeTimers } from "./helpers.js";

beforeEach(() => FakeEventSource.reset());

for (const item of file.cases) {
  test(`the fold: ${item.name}`, () => {
    let task;
    for (const { event, refused } of logged(item.events)) {
      const next = applyEventToTask(task, event);
      if (refused) assert.equal(next, task, `${event.type} at seq ${event.seq} is refused`);
      else assert.notEqual(next, task, `${event.type} at seq ${event.seq} is applied`);
      task = next;
    }
    assertTask(task, item.task);
  });

  test(`a watch: ${item.name}`, async () => {
    const [{ event: first }, ...rest] = logged(item.events);
    const queued = applyEventToTask(undefined, first);
    const server = fakeServer({ task: queued, output: { task_id: file.task_id, last_event_id: first.id, streams: {} } });
    const client = createClient({ fetch: server.fetch, EventSource: FakeEventSource, timers: fakeTimers(), connectivity: null });
    const applied = [];
    const watch = client.watchTask(file.task_id, { onEvent: (event) => applied.push(event.id) });
    for (let i = 0; i < 10; i += 1) await tick();
    for (const { event } of rest) FakeEventSource.last.emit(event.type, event);
    assertTask(watch.task, item.task);
    assert.deepEqual(
      applied,
      rest.filter(({ refused }) => !refused).map(({ event }) => event.id),
      "every accepted event once, none refused",
    );
    watch.stop();
  });
}
