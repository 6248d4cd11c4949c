// Type-checked by tests/types.test.js (never run): the client used as a TypeScript page would,
// against types/index.d.ts. Each @ts-expect-error is a misuse the types must refuse.
import { ApiError, createClient, watchTask } from "../types/index.js";
import type { HeldStream, KindName, ParamsOf, SubmittedTask, Task, TaskEvent, TaskOutput, WatchToken, paths } from "../types/index.js";

const client = createClient({ baseUrl: "https://api.example.com", token: async () => "token" });
createClient({ credentials: "include" });
createClient({ token: () => ({ token: "t", expires_at: "2026-01-01T00:00:00Z", scope: { task_id: "x" } }) });
// @ts-expect-error a token is a string or a function giving one
createClient({ token: 42 });

async function submitting(): Promise<void> {
  const task: SubmittedTask = await client.submit("add", { x: 2, y: 3 }, { tags: ["user:42"], idempotencyKey: "k", watchToken: true });
  const token: WatchToken | null | undefined = task.watch_token;
  const page = await client.listTasks({ state: "running", kind: "long", limit: 10 });
  const first: Task | undefined = page.items[0];
  const output: TaskOutput = await client.getOutput(task.id);
  const minted: WatchToken = await client.createTaskToken(task.id, { ttlSeconds: 900 });
  await client.createTagToken("user:42");
  const kinds: KindName[] = ["add", "long"];
  const params: ParamsOf<"long"> = { seconds: 5 };
  void [token, first, output, minted, kinds, params];
  // @ts-expect-error add's params are x and y
  await client.submit("add", { seconds: 5 });
  // @ts-expect-error no such kind
  await client.submit("resize", {});
  // @ts-expect-error a state is one of the task states
  await client.listTasks({ state: "sleeping" });
}

function watching(signal: AbortSignal): void {
  const watch = client.watchTask("019abf3e6c2a7d1e9b41c0f2a55d3e10", {
    signal,
    onEvent(event: TaskEvent, task: Task) {
      if (event.type === "output" && event.output) void event.output.offset;
      void task.seq;
    },
    onProgress(progress) {
      void progress.percent.toFixed(1);
    },
    onOutput(stream, text, chunk) {
      void [stream.toUpperCase(), text.length, chunk?.offset];
    },
    onLog(line) {
      void line.message;
    },
    onState(state) {
      // @ts-expect-error not a connection state
      if (state === "open") return;
    },
    onRetry(error, waitMs) {
      void [error.status, waitMs];
    },
    onEnd(task) {
      void task.result;
    },
    onError(error) {
      if (error.code === "token_expired") void error.problem.detail;
      void error.fieldErrors.map((field) => field.field);
    },
  });
  const held: HeldStream | undefined = watch.output.streams.get("output");
  void held?.text;
  void watch.done.then((task: Task) => task.state);
  watch.stop();
  // @ts-expect-error the output a watch holds is read-only
  watch.output.streams.set("x", held!);

  const events = client.watchEvents({ types: ["queued", "succeeded"], tag: "user:42", lastEventId: null, onEvent: (event) => void event.seq });
  void events.lastEventId;
  events.stop();
  // @ts-expect-error not an event type
  client.watchEvents({ types: ["rebooted"] });

  watchTask("id", { baseUrl: "", token: "t", onEnd: (task) => void task.id });
}

function failing(error: unknown): string {
  return error instanceof ApiError ? `${error.status} ${error.code}` : "unknown";
}

type CancelAnswer = paths["/api/tasks/{task_id}/cancel"]["post"]["responses"][202]["content"]["application/json"];
const cancelled: CancelAnswer | null = null;

export { submitting, watching, failing, cancelled };
