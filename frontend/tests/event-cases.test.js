// The shared cases (tests/cases/events.json) run through the page's store, which folds with the
// client's fold (client/tests/event-cases.test.js runs them through the fold and a watch): the
// backend's fold and the event log's scripts are held to the same file, so all agree.
import { test } from "node:test";
import assert from "node:assert/strict";
import { assertTask, cases as file, logged } from "../client/tests/event-cases.js";
import { createStore, QUIET_TYPES } from "../src/store.js";

for (const item of file.cases) {
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
