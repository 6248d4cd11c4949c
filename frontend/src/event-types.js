/**
 * What each event type does to a task, read from the table that the event log's scripts and the
 * backend's fold follow too (`backend/taskstream/events/types.json`). The bundle carries the table
 * itself, so the page never disagrees with the server about what an event means, and needs no
 * request to learn it.
 *
 * A row gives the task's `state` after the event, the states it `follows` (none: it must be the
 * task's first event), whether it is `final`, and the fields it `sets`: a string copies that field
 * of the event, null clears the field, `{add: n}` adds n, `{first: f}` copies the event's field f
 * only while the task has no value, `{value: v}` writes v. A row this module cannot read throws at
 * load time: a page that half understands the table would drift from the server without a sound.
 */

import table from "../../backend/taskstream/events/types.json" with { type: "json" };

/** Rules by event type: `{ type, state, first, follows: Set, final, writes: [[field, write]] }`. */
export const RULES = compile(table);
export const EVENT_TYPES = Object.freeze([...RULES.keys()]);
export const FINAL_STATES = new Set([...RULES.values()].filter((rule) => rule.final).map((rule) => rule.state));
export const ACTIVE_STATES = new Set([...RULES.values()].map((rule) => rule.state).filter((state) => !FINAL_STATES.has(state)));

/** The rules of a table shaped like types.json; exported so a malformed one can be tested. */
export function compile({ types } = {}) {
  if (!types || typeof types !== "object") throw new Error("the event table has no types");
  const rules = new Map();
  for (const [type, row] of Object.entries(types)) {
    if (typeof row?.state !== "string" || !Array.isArray(row.follows)) throw new Error(`event type ${type}: no state or follows`);
    rules.set(
      type,
      Object.freeze({
        type,
        state: row.state,
        first: row.follows.length === 0,
        follows: new Set(row.follows),
        final: row.final === true,
        writes: Object.entries(row.sets ?? {}).map(([field, spec]) => [field, writer(`${type}.${field}`, spec)]),
      }),
    );
  }
  return rules;
}

/**
 * The rule of `type` if an event of that type may come next for `task` (undefined: the task does
 * not exist yet); null for an unknown type or one that may not follow the task's state.
 */
export function ruleFor(task, type) {
  const rule = RULES.get(type);
  if (!rule) return null;
  const allowed = task ? rule.follows.has(task.state) : rule.first;
  return allowed ? rule : null;
}

/** `(current, event) => value` for one field write. A field the event lacks copies as null. */
function writer(where, spec) {
  if (spec === null) return () => null;
  if (typeof spec === "string") return (current, event) => event[spec] ?? null;
  const entries = spec && typeof spec === "object" ? Object.entries(spec) : [];
  if (entries.length === 1) {
    const [[op, arg]] = entries;
    if (op === "add" && Number.isFinite(arg)) return (current) => (Number.isFinite(current) ? current : 0) + arg;
    if (op === "first" && typeof arg === "string") return (current, event) => current ?? event[arg] ?? null;
    if (op === "value") return () => arg;
  }
  throw new Error(`event table, ${where}: ${JSON.stringify(spec)} is not a field write`);
}
