// Pure formatting helpers: every function returns plain text, never markup.

const SECOND = 1000;
const MINUTE = 60 * SECOND;
const HOUR = 60 * MINUTE;

/** "850 ms", "4.2 s", "3 min 05 s", "2 h 07 min". */
export function formatDuration(ms) {
  if (!Number.isFinite(ms)) return "";
  const value = Math.max(0, ms);
  if (value < SECOND) return `${Math.round(value)} ms`;
  if (value < 10 * SECOND) return `${(value / SECOND).toFixed(1)} s`;
  if (value < MINUTE) return `${Math.floor(value / SECOND)} s`;
  if (value < HOUR) {
    const minutes = Math.floor(value / MINUTE);
    const seconds = Math.floor((value % MINUTE) / SECOND);
    return `${minutes} min ${String(seconds).padStart(2, "0")} s`;
  }
  const hours = Math.floor(value / HOUR);
  const minutes = Math.floor((value % HOUR) / MINUTE);
  return `${hours} h ${String(minutes).padStart(2, "0")} min`;
}

/** Whole seconds left until a deadline, for a ticking "retry in 4 s". */
export function formatCountdown(ms) {
  if (!Number.isFinite(ms)) return "";
  const seconds = Math.ceil(ms / SECOND);
  if (seconds <= 0) return "any moment";
  if (seconds < 60) return `in ${seconds} s`;
  return `in ${formatDuration(seconds * SECOND)}`;
}

/** Milliseconds since the epoch, or NaN for a missing/invalid timestamp. */
export function parseTime(iso) {
  return typeof iso === "string" ? Date.parse(iso) : NaN;
}

/** Local wall-clock time, "14:03:22". */
export function formatClock(iso) {
  const time = parseTime(iso);
  if (Number.isNaN(time)) return "";
  const date = new Date(time);
  return [date.getHours(), date.getMinutes(), date.getSeconds()]
    .map((part) => String(part).padStart(2, "0"))
    .join(":");
}

/** A JSON value as compact text, cut to `max` characters. */
export function formatValue(value, max = 200) {
  let text;
  if (typeof value === "string") text = value;
  else {
    try {
      text = JSON.stringify(value);
    } catch {
      text = String(value);
    }
    if (text === undefined) text = String(value);
  }
  return truncate(text, max);
}

/** "x = 2, y = 3"; strings keep their quotes so "" and "2" stay visible. */
export function formatParams(params, max = 160) {
  if (params === null || typeof params !== "object") return "";
  const parts = Object.entries(params).map(([name, value]) => `${name} = ${jsonText(value)}`);
  return truncate(parts.join(", "), max);
}

function jsonText(value) {
  try {
    return JSON.stringify(value) ?? String(value);
  } catch {
    return String(value);
  }
}

export function truncate(text, max) {
  return text.length > max ? `${text.slice(0, max - 1)}…` : text;
}

/** Task ids are time-ordered hex, so their tail is the distinctive part. */
export function shortId(id) {
  return typeof id === "string" && id.length > 6 ? `…${id.slice(-6)}` : String(id ?? "");
}

/** "40%" with at most one decimal. */
export function formatPercent(percent) {
  if (!Number.isFinite(percent)) return "";
  const clamped = Math.min(100, Math.max(0, percent));
  return `${Number.isInteger(clamped) ? clamped : clamped.toFixed(1)}%`;
}

export function formatError(error) {
  if (!error || typeof error !== "object") return "";
  const type = typeof error.type === "string" ? error.type : "";
  const message = typeof error.message === "string" ? error.message : formatValue(error.message);
  return type && message ? `${type}: ${message}` : type || message;
}

/** "1,234": a count with thousands separated, the same on every machine. */
export function formatCount(n) {
  if (!Number.isFinite(n)) return "";
  return Math.round(n).toString().replace(/\B(?=(\d{3})+(?!\d))/g, ",");
}

/** "1,234 characters", "1 item": the size of an output stream. */
export function formatStreamSize(type, length) {
  const unit = type === "json" ? "item" : "character";
  return `${formatCount(length)} ${unit}${length === 1 ? "" : "s"}`;
}

const STATE_LABELS = {
  queued: "Queued",
  running: "Running",
  retrying: "Retrying",
  succeeded: "Succeeded",
  failed: "Failed",
  cancelled: "Cancelled",
};

/** "Running", "Succeeded"...: a task's state as a person reads it. */
export function stateLabel(state) {
  return STATE_LABELS[state] ?? String(state ?? "Unknown");
}
