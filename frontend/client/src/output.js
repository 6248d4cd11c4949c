/**
 * A task's output as a watch holds it: its streams (text, or JSON items) accumulated chunk by
 * chunk, its log lines, and how far into the task's events it reaches. Pure: no DOM, no table;
 * the watch decides which event does what and calls in here.
 *
 * A chunk `{stream, offset, text | items, truncated?}` says where it goes: `offset` is the stream's
 * length before it, in Unicode code points for text (not UTF-16 units: "👋" is one) and in items for
 * JSON. It is applied when `offset` equals the length held; below it, it was applied already (a
 * repeat, skipped; a chunk that only begins inside what is held adds its unseen tail); above it,
 * chunks were missed (a "gap": the caller refetches the whole output).
 *
 * A stream object's content only grows. Content that is replaced rather than extended (a new
 * attempt, a refetch that disagrees) is a new stream object, so a view that keeps the object it
 * painted knows whether to append the new part or to paint the stream afresh.
 */

export const MAX_LOG_LINES = 500;
const LEVELS = new Set(["debug", "info", "warning", "error"]);

export function codePointLength(text) {
  let count = 0;
  for (const _ of text) count += 1;
  return count;
}

/** `text` without its first `count` code points. */
export function dropCodePoints(text, count) {
  if (count <= 0) return text;
  let index = 0;
  let seen = 0;
  for (const char of text) {
    if (seen === count) break;
    index += char.length;
    seen += 1;
  }
  return text.slice(index);
}

/** A chunk as `{stream, offset, type, text?, items?, size, truncated}`, or null if malformed. */
export function readChunk(chunk) {
  if (!chunk || typeof chunk !== "object" || typeof chunk.stream !== "string" || !chunk.stream) return null;
  if (!Number.isInteger(chunk.offset) || chunk.offset < 0) return null;
  const truncated = chunk.truncated === true;
  if (typeof chunk.text === "string") {
    return { stream: chunk.stream, offset: chunk.offset, type: "text", text: chunk.text, size: codePointLength(chunk.text), truncated };
  }
  if (Array.isArray(chunk.items)) {
    return { stream: chunk.stream, offset: chunk.offset, type: "json", items: chunk.items, size: chunk.items.length, truncated };
  }
  return null;
}

/**
 * The task's output summary (`{<stream>: {type, length, truncated}}`) after `chunk`, as the
 * backend's fold computes it: the length is where the chunk ends, and truncated stays once set.
 * Used by the event table's `extend` write; a malformed chunk changes nothing.
 */
export function extendSummary(summary, chunk) {
  const read = readChunk(chunk);
  if (!read) return summary ?? {};
  const streams = { ...(summary && typeof summary === "object" ? summary : {}) };
  const before = streams[read.stream];
  streams[read.stream] = { type: read.type, length: read.offset + read.size, truncated: read.truncated || before?.truncated === true };
  return streams;
}

/** An empty output: `streams` by name in order of appearance, `logs` oldest first. */
export function createTaskOutput() {
  return { streams: new Map(), logs: [], logKey: 0, lastEventId: null };
}

function newStream(name, type) {
  return { name, type, length: 0, truncated: false, text: "", items: [] };
}

/** Applies one chunk. Returns "applied", "repeat", "gap" (missed chunks: refetch) or "invalid". */
export function applyChunk(output, chunk) {
  const read = readChunk(chunk);
  if (!read) return "invalid";
  let stream = output.streams.get(read.stream);
  // A stream of the other type: this copy and the server's differ; only a refetch can tell.
  if (stream && stream.type !== read.type) return "gap";
  const length = stream ? stream.length : 0;
  if (read.offset > length) return "gap";
  const end = read.offset + read.size;
  if (read.offset < length && end <= length) return "repeat";
  if (!stream) {
    stream = newStream(read.stream, read.type);
    output.streams.set(read.stream, stream);
  }
  const skip = length - read.offset; // > 0 only for a chunk that begins inside what is held
  if (read.type === "text") {
    stream.text += skip > 0 ? dropCodePoints(read.text, skip) : read.text;
  } else {
    for (let i = skip; i < read.items.length; i += 1) stream.items.push(read.items[i]);
  }
  stream.length = end;
  if (read.truncated) stream.truncated = true;
  return "applied";
}

/**
 * Takes the streams and log lines of a `GET /api/tasks/{id}/output` answer (or of a `snapshot`
 * event's `output`) as the whole truth: streams it lacks are dropped; a stream whose held content is a prefix of
 * the answer's grows in place (the view appends the rest), any other is replaced.
 */
export function loadOutput(output, answer) {
  const streams = answer?.streams && typeof answer.streams === "object" ? answer.streams : {};
  const next = new Map();
  for (const [name, fresh] of Object.entries(streams)) {
    if (!fresh || typeof fresh !== "object") continue;
    const type = fresh.type === "json" || (fresh.type !== "text" && Array.isArray(fresh.items)) ? "json" : "text";
    const current = output.streams.get(name);
    const same = current && current.type === type;
    let stream;
    if (type === "text") {
      const text = typeof fresh.text === "string" ? fresh.text : "";
      stream = same && text.startsWith(current.text) ? current : newStream(name, type);
      stream.text = text;
      stream.length = Number.isInteger(fresh.length) ? fresh.length : codePointLength(text);
    } else {
      const items = Array.isArray(fresh.items) ? fresh.items : [];
      stream = same && isPrefix(current.items, items) ? current : newStream(name, type);
      for (let i = stream.items.length; i < items.length; i += 1) stream.items.push(items[i]);
      stream.length = Number.isInteger(fresh.length) ? fresh.length : items.length;
    }
    stream.truncated = fresh.truncated === true;
    next.set(name, stream);
  }
  output.streams = next;
  if (Array.isArray(answer?.logs)) {
    // The task's last log lines as of that answer: they replace what the row held.
    output.logs = [];
    for (const line of answer.logs) addLogLine(output, line, { at: line?.at ?? null });
  }
  reach(output, answer?.last_event_id);
}

function isPrefix(held, items) {
  if (held.length > items.length) return false;
  for (let i = 0; i < held.length; i += 1) {
    if (JSON.stringify(held[i]) !== JSON.stringify(items[i])) return false;
  }
  return true;
}

/** A new attempt starts afresh: no streams; the log keeps its lines, marked where it began. */
export function resetStreams(output, attempt, { maxLogs = MAX_LOG_LINES } = {}) {
  output.streams = new Map();
  if (Number.isInteger(attempt) && attempt > 1) addLogLine(output, { level: "attempt", message: `Attempt ${attempt}` }, { maxLogs });
}

/** Appends a log line (`{level, message}` of a `log` event), keeping at most `maxLogs`. */
export function addLogLine(output, line, { at = null, maxLogs = MAX_LOG_LINES } = {}) {
  const level = line?.level === "attempt" || LEVELS.has(line?.level) ? line.level : "info";
  const message = typeof line?.message === "string" ? line.message : String(line?.message ?? "");
  output.logKey += 1;
  output.logs.push({ key: output.logKey, level, message, at });
  if (output.logs.length > maxLogs) output.logs.splice(0, output.logs.length - maxLogs);
}

/** Notes that the output reaches event `id`; it never moves back. */
export function reach(output, id) {
  if (typeof id === "string" && id && isAfter(id, output.lastEventId)) output.lastEventId = id;
}

/**
 * Whether event id `a` comes after `b` ("<ms>-<n>", the log's ids). No `b`: yes. No `a` (an event
 * without an id) cannot be placed, and counts as after.
 */
export function isAfter(a, b) {
  if (typeof b !== "string" || !b) return true;
  if (typeof a !== "string" || !a) return true;
  const x = parseId(a);
  const y = parseId(b);
  if (!x || !y) return a > b;
  return x[0] > y[0] || (x[0] === y[0] && x[1] > y[1]);
}

function parseId(id) {
  const match = /^(\d+)-(\d+)$/.exec(id);
  return match ? [Number(match[1]), Number(match[2])] : null;
}

/** The whole content of a stream as text: JSON items one per line, as the server stores them. */
export function streamText(stream) {
  if (!stream) return "";
  return stream.type === "text" ? stream.text : stream.items.map((item) => JSON.stringify(item)).join("\n");
}
