// Types of the client's API (src/index.js). The REST shapes come from api.d.ts, which `make types`
// generates from the API's OpenAPI description; these are written by hand, and
// tests/types-usage.ts, type-checked by `npm test`, keeps them honest.

import type { components, operations, paths } from "./api";

export type { components, operations, paths };

type Schemas = components["schemas"];

export type Task = Schemas["Task"];
/** The answer to a submission: the task, with `watch_token` when one was asked for. */
export type SubmittedTask = Schemas["SubmittedTask"];
export type TaskOutput = Schemas["TaskOutput"];
export type TaskPage = Schemas["TaskPage"];
export type TaskState = Schemas["TaskState"];
export type TaskKind = Schemas["TaskKindOut"];
export type Progress = Schemas["Progress"];
export type ErrorInfo = Schemas["ErrorInfo"];
export type Problem = Schemas["Problem"];
export type FieldError = Schemas["FieldError"];
export type WatchToken = Schemas["WatchToken"];
export type Session = Schemas["Session"];
export type StreamContent = Schemas["StreamContent"];
export type LoggedLine = Schemas["LoggedLine"];
export type JsonValue = Schemas["JsonValue"];

/** The body of `POST /api/tasks`: one shape per declared kind. */
export type TaskCreate = operations["submitTask"]["requestBody"]["content"]["application/json"];
export type KindName = TaskCreate["kind"];
/** The params of one kind. */
export type ParamsOf<K extends KindName> = Extract<TaskCreate, { kind: K }>["params"];

/** The types of `backend/taskstream/events/types.json` (tests/types.test.js compares the two). */
export type EventType = Schemas["EventType"];
/** What one `output` event adds to one of the task's output streams. */
export type OutputChunk = Schemas["OutputChunk"];
export type LogLine = Schemas["LogLine"];
/** One step of a task's life, as the event streams send it. */
export type TaskEvent = Schemas["Event"];
export type { TaskEvent as Event };

/** A `reset`: the server could not resume where asked; refetch over REST. */
export type ResetData = Schemas["Reset"];
/** A `snapshot`: the task and its output as of the message's id. */
export type SnapshotData = Schemas["Snapshot"];

/** Every failure of the client. `status` 0: no answer came (network_error, timeout, token_error). */
export declare class ApiError extends Error {
  constructor(status: number, problem: Problem | Omit<Problem, "detail"> & { detail?: string });
  readonly name: "ApiError";
  readonly status: number;
  readonly problem: Problem;
  /** The stable code: the last segment of `problem.type` ("/problems/not_found" -> "not_found"), or the client's own ("network_error", "timeout", "bad_response", "token_error"). */
  readonly code: string;
  /** The 422 field errors; empty for any other error. */
  readonly fieldErrors: FieldError[];
}

/** A failure as one sentence: its detail, else its title, ending in a stop. */
export declare function describeError(error: unknown): string;

/** A problem type's code: its last path segment. */
export declare function codeOf(type: string): string;

/** What the API reads: a token, or a function that gives a fresh one (or a watch token). */
export type TokenSource = string | (() => string | WatchToken | Promise<string | WatchToken>);

export interface Backoff {
  initialMs: number;
  maxMs: number;
}

export interface Timers {
  setTimeout(fn: () => void, ms: number): unknown;
  clearTimeout(id: any): void;
}

export interface EventSourceLike {
  readonly readyState: number;
  addEventListener(type: string, listener: (event: MessageEvent) => void): void;
  close(): void;
}
export type EventSourceConstructor = new (url: string, init?: { withCredentials?: boolean }) => EventSourceLike;

export interface ClientOptions {
  /** The API's origin; "" (the default) is the page's own. */
  baseUrl?: string;
  token?: TokenSource | null;
  /** "omit" by default with a token, "include" without one (a session cookie). */
  credentials?: "include" | "omit" | "same-origin";
  fetch?: typeof fetch;
  EventSource?: EventSourceConstructor;
  /** How long a REST call may take (15 s). */
  timeoutMs?: number;
  /** Waits between tries, jittered: 1 s doubling to 30 s. */
  backoff?: Backoff;
  /** How long a stream may take to open before it is given up (15 s). */
  openTimeoutMs?: number;
  timers?: Timers;
  random?: () => number;
  /** Where `online`/`offline` come from (`window`). */
  connectivity?: EventTarget | null;
  isOnline?: () => boolean;
}

export interface SubmitOptions {
  tags?: string[];
  /** The same key returns the same task: a retried submission is safe. */
  idempotencyKey?: string;
  /** Answer a watch token of the task too (`watch_token`). */
  watchToken?: boolean;
}

export interface ListTasksOptions {
  state?: TaskState;
  kind?: KindName;
  tag?: string;
  limit?: number;
  cursor?: string;
}

export interface RecentTasksOptions {
  cap?: number;
  pageSize?: number;
  tag?: string;
}

/** The newest tasks, and the event id to resume `watchEvents` from without missing a change. */
export interface RecentTasks {
  items: Task[];
  resumeEventId: string | null;
}

export interface TokenOptions {
  ttlSeconds?: number;
}

export type ConnectionState = "connecting" | "live" | "reconnecting" | "offline" | "closed";

/** One output stream as a watch holds it. An object is replaced, never shrunk: append to what you showed. */
export interface HeldStream {
  readonly name: string;
  readonly type: "text" | "json";
  /** Code points of text, or items. */
  readonly length: number;
  readonly truncated: boolean;
  readonly text: string;
  readonly items: readonly JsonValue[];
}

export interface HeldLogLine {
  readonly key: number;
  /** "attempt" marks where a new attempt began. */
  readonly level: "debug" | "info" | "warning" | "error" | "attempt";
  readonly message: string;
  readonly at: string | null;
}

/** A task's output as a watch holds it. */
export interface HeldOutput {
  readonly streams: ReadonlyMap<string, HeldStream>;
  readonly logs: readonly HeldLogLine[];
  /** The last event it includes. */
  readonly lastEventId: string | null;
}

export interface WatchTaskOptions {
  /** A copy of the task already held (from a list): no `GET /api/tasks/{id}` when it is as new as the output. */
  task?: Task | null;
  /** The output of an earlier watch of this task: what it holds grows in place. */
  output?: HeldOutput | null;
  maxLogLines?: number;
  /** Every event once, in seq order, after it was applied to `task`. */
  onEvent?(event: TaskEvent, task: Task): void;
  onProgress?(progress: Progress, task: Task): void;
  /** The text so far of that stream (a JSON stream: one item per line); "" and no chunk when a new attempt emptied it. */
  onOutput?(stream: string, text: string, chunk: OutputChunk | null, task: Task): void;
  onLog?(line: HeldLogLine, task: Task): void;
  /** Task and output replaced as a whole: the first answer, a refetch, a `snapshot`. */
  onSnapshot?(task: Task, output: HeldOutput): void;
  onState?(state: ConnectionState): void;
  /** A failure worth another try; the watch tries again after `waitMs`. */
  onRetry?(error: ApiError, waitMs: number): void;
  /** The final task, once. */
  onEnd?(task: Task): void;
  /** The error that ended the watch: 401, 403, 404, out_of_step... */
  onError?(error: ApiError): void;
  signal?: AbortSignal | null;
}

export interface TaskWatch {
  /** The task as applied so far (the copy given, or null before the first answer). */
  readonly task: Task | null;
  readonly output: HeldOutput;
  /** The final task; rejects with the error that ended the watch, or an AbortError on stop. */
  readonly done: Promise<Task>;
  stop(): void;
}

export interface WatchEventsOptions {
  /** Without types, the server leaves out output and log events. */
  types?: EventType[] | string;
  kind?: KindName;
  tag?: string;
  task?: string | string[];
  lastEventId?: string | null;
  onEvent?(event: TaskEvent): void;
  onReset?(data: ResetData): void;
  onState?(state: ConnectionState): void;
  /** The stream gave up on a connection (it tries again after a backoff); an EventSource cannot say why. */
  onGiveUp?(): void;
  signal?: AbortSignal | null;
}

export interface EventsWatch {
  /** The last event (or reset) seen: where a new watch would resume. */
  readonly lastEventId: string | null;
  stop(): void;
}

export interface Client {
  submit<K extends KindName>(kind: K, params: ParamsOf<K>, options?: SubmitOptions): Promise<SubmittedTask>;
  listTasks(options?: ListTasksOptions): Promise<TaskPage>;
  listRecentTasks(options?: RecentTasksOptions): Promise<RecentTasks>;
  getTask(id: string): Promise<Task>;
  getOutput(id: string): Promise<TaskOutput>;
  cancel(id: string): Promise<Task>;
  createTaskToken(id: string, options?: TokenOptions): Promise<WatchToken>;
  createTagToken(tag: string, options?: TokenOptions): Promise<WatchToken>;
  listKinds(): Promise<TaskKind[]>;
  getSession(): Promise<Session>;
  /** Trades an API key for the session cookie. */
  signIn(apiKey: string): Promise<null>;
  signOut(): Promise<null>;
  watchTask(id: string, options?: WatchTaskOptions): TaskWatch;
  watchEvents(options?: WatchEventsOptions): EventsWatch;
}

export declare function createClient(options?: ClientOptions): Client;
/** `createClient(options).watchTask(id, options)`, or on `options.client`. */
export declare function watchTask(id: string, options?: WatchTaskOptions & ClientOptions & { client?: Client }): TaskWatch;
/** `createClient(options).watchEvents(options)`, or on `options.client`. */
export declare function watchEvents(options?: WatchEventsOptions & ClientOptions & { client?: Client }): EventsWatch;

export declare const TASK_PAGE_LIMIT: number;
/** Refetches after gaps, in a row with nothing applied, before a watch ends out of step. */
export declare const MAX_GAP_SYNCS: number;
/** Whether a watch tries again after this error: the network, a timeout, 408, 429, 5xx. */
export declare function worthRetrying(error: unknown): boolean;

// The pieces the watches are made of, for a page that keeps its own state.

export interface EventRule {
  readonly type: EventType;
  readonly state: TaskState;
  readonly first: boolean;
  readonly follows: ReadonlySet<TaskState>;
  readonly final: boolean;
  readonly outputLog: boolean;
  readonly chunk: string | null;
  readonly clears: ReadonlySet<string>;
}
export declare const RULES: ReadonlyMap<EventType, EventRule>;
export declare const EVENT_TYPES: readonly EventType[];
export declare const FINAL_STATES: ReadonlySet<TaskState>;
export declare const ACTIVE_STATES: ReadonlySet<TaskState>;
export declare const OUTPUT_LOG_TYPES: ReadonlySet<EventType>;
export declare const OUTPUT_LOG_STATES: ReadonlySet<TaskState>;
export declare function ruleFor(task: Pick<Task, "state"> | undefined, type: string): EventRule | null;
/** The task after `event` (the server's fold); `task` itself when the event may not come next. */
export declare function applyEventToTask<T extends Task | undefined>(task: T, event: TaskEvent): Task | T;
export declare function normalizeTask(task: Partial<Task> & Pick<Task, "id">): Task;
export interface OutputApplied {
  status: "applied" | "repeat" | "gap" | "invalid" | "ignored";
  chunk?: OutputChunk | null;
  cleared?: string[];
  line?: HeldLogLine | null;
}
export declare function applyEventToOutput(output: HeldOutput, event: TaskEvent, options?: { maxLogs?: number }): OutputApplied;
export declare function createTaskOutput(): HeldOutput;
export declare function loadOutput(output: HeldOutput, answer: TaskOutput): void;
export declare function streamText(stream: HeldStream | undefined): string;
export declare function codePointLength(text: string): number;
/** Whether event id `a` comes after `b`. */
export declare function isAfter(a: string | null | undefined, b: string | null | undefined): boolean;
export declare const MAX_LOG_LINES: number;
export declare function backoffDelay(attempt: number, backoff: Backoff, random?: () => number): number;

export interface RetryingSpec<T> {
  request(): Promise<T>;
  apply(answer: T): void | Promise<void>;
  report(error: unknown, waitMs: number): void;
  handle?(error: unknown): boolean;
  again?(): void;
}
export interface Retrying {
  run(): Promise<void>;
  cancel(): void;
  reset(): void;
}
export declare function createRetrying(options: {
  timers: Timers;
  backoff: Backoff;
  random?: () => number;
  epoch?: () => unknown;
}): <T>(spec: RetryingSpec<T>) => Retrying;

export interface StreamOptions {
  url(lastEventId: string | null): string;
  EventSource: EventSourceConstructor;
  onEvent(event: TaskEvent): void;
  onReset(data: ResetData): void;
  onSnapshot?: ((data: { task: Task; output: TaskOutput }) => void) | null;
  onState?(state: ConnectionState): void;
  onGiveUp?(): void;
  beforeReconnect?: (() => unknown) | null;
  withCredentials?: boolean;
  isOnline?: () => boolean;
  connectivity?: EventTarget | null;
  timers?: Timers;
  backoff?: Backoff;
  random?: () => number;
  openTimeoutMs?: number;
}
export interface Stream {
  start(resumeEventId?: string | null): void;
  stop(): void;
  readonly lastEventId: string | null;
}
export declare function createStream(options: StreamOptions): Stream;
