/**
 * What each event type does to a task, read from the table that the event log's scripts and the
 * backend's fold follow too (`backend/taskstream/events/types.json`). The bundle carries the table
 * itself, so the page never disagrees with the server about what an event means, and needs no
 * request to learn it.
 *
 * A row gives the task's `state` after the event, the states it `follows` (none: it must be the
 * task's first event), whether it is `final`, and the fields it `sets`: a string copies that field
 * of the event, null clears the field, `{add: n}` adds n, `{first: f}` copies the event's field f
 * only while the task has no value, `{value: v}` writes v, `{extend: f}` adds the output chunk in
 * the event's field f to the task's output summary, `{push: f}` counts the event's field f (the
 * lines themselves come from `/output` and the task's stream). A field that some row extends is a map of
 * streams, which null clears to `{}`. A row this module cannot read throws at load time: a page
 * that half understands the table would drift from the server without a sound.
 *
 * `output_log` rows (output chunks, log lines) go to the server's output log, which
 * `/api/events` leaves out unless asked for them.
 *
 * `applyEventToTask` is the fold itself, the same as the server's: the shared cases in
 * `tests/cases/events.json` hold both to one answer. `applyEventToOutput` is what an event does to
 * a task's output as a client holds it (`output.js`). The table comes in as a JSON module (an import
 * attribute): browsers that lack them load the bundle (`dist/taskstream.js`), which carries it.
 */

import table from "../../../backend/taskstream/events/types.json" with { type: "json" };
import { addLogLine, applyChunk, extendSummary, isAfter, MAX_LOG_LINES, reach, resetStreams } from "./output.js";

/**
 * Rules by event type: `{ type, state, first, follows: Set, final, outputLog, chunk, clears: Set,
 * writes: [[field, write]] }`. `chunk`: the event field holding the output chunk it extends with
 * (null: none); `clears`: the map fields it clears (a new attempt's output starts afresh).
 */
export const RULES = compile(table);
export const EVENT_TYPES = Object.freeze([...RULES.keys()]);
export const FINAL_STATES = new Set([...RULES.values()].filter((rule) => rule.final).map((rule) => rule.state));
export const ACTIVE_STATES = new Set([...RULES.values()].map((rule) => rule.state).filter((state) => !FINAL_STATES.has(state)));
/** The types `/api/events` carries only when asked for them. */
export const OUTPUT_LOG_TYPES = new Set([...RULES.values()].filter((rule) => rule.outputLog).map((rule) => rule.type));
/**
 * The states in which output-log events may come and which they keep (running): a gap in a
 * task's seq on `/api/events` without them, between events of such a state, is what they leave.
 */
export const OUTPUT_LOG_STATES = new Set(
  [...RULES.values()].filter((rule) => rule.outputLog && rule.follows.has(rule.state)).map((rule) => rule.state),
);

/** The rules of a table shaped like types.json; exported so a malformed one can be tested. */
export function compile({ types } = {}) {
  if (!types || typeof types !== "object") throw new Error("the event table has no types");
  const maps = new Set();
  for (const row of Object.values(types)) {
    for (const [field, spec] of Object.entries(row?.sets ?? {})) {
      if (spec && typeof spec === "object" && "extend" in spec) maps.add(field);
    }
  }
  const rules = new Map();
  for (const [type, row] of Object.entries(types)) {
    if (typeof row?.state !== "string" || !Array.isArray(row.follows)) throw new Error(`event type ${type}: no state or follows`);
    const sets = Object.entries(row.sets ?? {});
    const extend = sets.find(([, spec]) => spec && typeof spec === "object" && "extend" in spec);
    rules.set(
      type,
      Object.freeze({
        type,
        state: row.state,
        first: row.follows.length === 0,
        follows: new Set(row.follows),
        final: row.final === true,
        outputLog: row.output_log === true,
        chunk: extend ? extend[1].extend : null,
        clears: new Set(sets.filter(([field, spec]) => spec === null && maps.has(field)).map(([field]) => field)),
        writes: sets.map(([field, spec]) => [field, writer(`${type}.${field}`, spec, maps.has(field))]),
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
function writer(where, spec, map) {
  if (spec === null) return map ? () => ({}) : () => null;
  if (typeof spec === "string") return (current, event) => event[spec] ?? null;
  const entries = spec && typeof spec === "object" ? Object.entries(spec) : [];
  if (entries.length === 1) {
    const [[op, arg]] = entries;
    if (op === "add" && Number.isFinite(arg)) return (current) => (Number.isFinite(current) ? current : 0) + arg;
    if (op === "first" && typeof arg === "string") return (current, event) => current ?? event[arg] ?? null;
    if (op === "value") return () => arg;
    if (op === "extend" && typeof arg === "string") return (current, event) => extendSummary(current, event[arg]);
    if (op === "push" && typeof arg === "string") return (current) => (Number.isFinite(current) ? current : 0) + 1;
  }
  throw new Error(`event table, ${where}: ${JSON.stringify(spec)} is not a field write`);
}

/**
 * The task after `event`, a pure function of both. The event table's row for its type gives the
 * new state and the fields written; `task` is undefined (or null) for a task's first event. An
 * event that may not come next (unknown type, a state it does not follow, a seq not above the
 * task's) returns `task` itself, unchanged.
 */
export function applyEventToTask(task, event) {
  const rule = ruleFor(task ?? undefined, event?.type);
  if (!rule || (task && !(event.seq > task.seq))) return task;
  const base = task ?? BLANK_TASK;
  const next = { ...base, state: rule.state, seq: event.seq, last_event_id: event.id ?? base.last_event_id };
  for (const [field, write] of rule.writes) {
    // A field the event lacks takes the task's default, as the server's model gives it: no tags is [].
    next[field] = write(base[field], event) ?? BLANK_TASK[field] ?? null;
  }
  return next;
}

/** A task from REST (or a snapshot) with every field a task has, each of its type or its default. */
export function normalizeTask(task) {
  return {
    id: task.id,
    kind: typeof task.kind === "string" ? task.kind : "",
    params: task.params && typeof task.params === "object" ? task.params : {},
    state: typeof task.state === "string" ? task.state : "queued",
    progress: task.progress ?? null,
    attempts: Number.isInteger(task.attempts) ? task.attempts : 0,
    result: task.result ?? null,
    error: task.error ?? null,
    created_at: task.created_at ?? null,
    started_at: task.started_at ?? null,
    finished_at: task.finished_at ?? null,
    retry_at: task.retry_at ?? null,
    cancel_requested: task.cancel_requested === true,
    seq: Number.isInteger(task.seq) ? task.seq : 0,
    last_event_id: task.last_event_id ?? null,
    worker: task.worker ?? null,
    owner: task.owner ?? null,
    tags: Array.isArray(task.tags) ? task.tags.filter((tag) => typeof tag === "string") : [],
    metadata: task.metadata && typeof task.metadata === "object" && !Array.isArray(task.metadata) ? task.metadata : null,
    output: task.output && typeof task.output === "object" && !Array.isArray(task.output) ? task.output : {},
    logs: Number.isInteger(task.logs) ? task.logs : 0,
  };
}

/** Every field a task has, none set: what a task's first event writes into. */
const BLANK_TASK = Object.freeze(normalizeTask({ id: null }));
Object.freeze(BLANK_TASK.params);
Object.freeze(BLANK_TASK.tags);
Object.freeze(BLANK_TASK.output);

/**
 * Applies an event of the task's own stream to its output. Output chunks go by their offsets
 * ("applied", "repeat", or "gap": chunks were missed, refetch the output; "invalid": malformed);
 * any other event counts once, by its id ("applied" or "repeat"): a log line is kept, and an
 * event that clears the output map (a new attempt's `started`) drops the streams. Returns
 * `{ status, chunk?, cleared?, line? }`: the chunk applied, the names of the streams dropped, the
 * log line added. "ignored": not an event of the table.
 */
export function applyEventToOutput(output, event, { maxLogs = MAX_LOG_LINES } = {}) {
  const rule = RULES.get(event?.type);
  if (!rule) return { status: "ignored" };
  const fresh = isAfter(event.id, output.lastEventId);
  if (rule.chunk) {
    const status = applyChunk(output, event[rule.chunk]);
    if (status === "gap" || status === "invalid") return { status };
    if (fresh) reach(output, event.id);
    return { status, chunk: status === "applied" ? event[rule.chunk] : null };
  }
  if (!fresh) return { status: "repeat" };
  const cleared = rule.clears.size ? [...output.streams.keys()] : [];
  if (rule.clears.size) resetStreams(output, event.attempt, { maxLogs });
  let line = null;
  if (event.log && typeof event.log === "object") {
    addLogLine(output, event.log, { at: event.at ?? null, maxLogs });
    line = output.logs.at(-1);
  }
  reach(output, event.id);
  return { status: "applied", cleared, line };
}
