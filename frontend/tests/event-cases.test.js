// The shared cases (tests/cases/events.json) run against the page's fold: the backend's fold and
// the event log's scripts are held to the same file, so all three agree on what events do.
import { test } from "node:test";
import assert from "node:assert/strict";
import { readFileSync } from "node:fs";
import { applyEventToTask, createStore, QUIET_TYPES } from "../src/store.js";

const file = JSON.parse(readFileSync(new URL("../../tests/cases/events.json", import.meta.url), "utf8"));

/**
 * A case's events as the log would send them. A refused event is not in the log, so it gets the
 * seq it would have had if accepted: only the table's `follows` may refuse it, never the seq guard.
 */
function logged(events) {
  let accepted = 0;
  return events.map(({ refused = false, ...fields }, index) => {
    const event = { ...fields, task_id: file.task_id, kind: file.kind, id: `1-${index + 1}`, seq: accepted + 1 };
    if (!refused) accepted += 1;
    return { event, refused };
  });
}

function assertTask(task, expected) {
  assert.ok(task, "the task exists");
  assert.equal(task.id, file.task_id);
  assert.equal(task.kind, file.kind);
  for (const [field, value] of Object.entries(expected)) assert.deepEqual(task[field], value, field);
}

assert.ok(file.cases.length > 0, "the shared cases were read");

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

  test(`the store: ${item.name}`, () => {
    const store = createStore();
    for (const { event, refused } of logged(item.events)) {
      assert.equal(store.applyEvent(event).status, refused ? "ignored" : "applied", `${event.type} at seq ${event.seq}`);
    }
    assertTask(store.state.tasks.get(file.task_id), item.task);
    const shown = item.events.filter((e) => !e.refused && !QUIET_TYPES.has(e.type));
    assert.equal(store.state.log.length, shown.length, "refused events are not logged, nor output, log lines, metadata");
  });
}
