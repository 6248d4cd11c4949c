// The shared cases (tests/cases/events.json), read once for every runner of them in this folder
// and the page's: the backend's fold and the event log's scripts are held to the same file.
import assert from "node:assert/strict";
import { readFileSync } from "node:fs";

export const cases = JSON.parse(readFileSync(new URL("../../../tests/cases/events.json", import.meta.url), "utf8"));
assert.ok(cases.cases.length > 0, "the shared cases were read");

/**
 * A case's events as the log would send them. A refused event is not in the log, so it gets the
 * seq it would have had if accepted: only the table's `follows` may refuse it, never the seq guard.
 */
export function logged(events) {
  let accepted = 0;
  return events.map(({ refused = false, ...fields }, index) => {
    const event = { ...fields, task_id: cases.task_id, kind: cases.kind, id: `1-${index + 1}`, seq: accepted + 1 };
    if (!refused) accepted += 1;
    return { event, refused };
  });
}

export function assertTask(task, expected) {
  assert.ok(task, "the task exists");
  assert.equal(task.id, cases.task_id);
  assert.equal(task.kind, cases.kind);
  for (const [field, value] of Object.entries(expected)) assert.deepEqual(task[field], value, field);
}
