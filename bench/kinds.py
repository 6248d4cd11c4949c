"""The benchmark's own task kinds, loaded by its taskstream stacks through TASK_KIND_MODULES
(`TASK_KIND_MODULES=bench.kinds`, set for the API, the bare server and the worker alike).

- `tokens`: waits until `start_at` (Unix time), then writes `chunks` small chunks at `rate` per
  second with `ctx.write`, each `"<seq>:<time.time()>;"`, so a client can tell from every chunk
  it reads when it was written, and which one it is.
- `bench_loop`: a loop of `calls` iterations, measured by the kind itself (CPU time of its
  process and wall time): `text` builds a chunk's text and drops it, `write` hands the same text
  to `ctx.write`, `empty` does nothing, `progress` calls `ctx.progress`. `write` less `text` is
  what `ctx.write` costs; `progress` less `empty`, what `ctx.progress` does.

Neither needs anything but the kind API; without `ctx.write` (a taskstream before task output)
both fail at once with a message that says so.
"""

import time
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, JsonValue

from taskstream.kinds import TaskContext, task_kind

NO_WRITE = (
    "this taskstream's task context has no write(): task output (ctx.write, `output` events) "
    "is not implemented in the backend under test"
)


def _writer(ctx: TaskContext) -> Any:
    write = getattr(ctx, "write", None)
    if write is None:
        raise RuntimeError(NO_WRITE)
    return write


class TokensParams(BaseModel):
    model_config = ConfigDict(extra="forbid")

    chunks: int = Field(1000, ge=1, le=2_000_000, description="Chunks to write.")
    rate: float = Field(1000, ge=1, le=200_000, description="Chunks per second.")
    start_at: float = Field(0, ge=0, description="Unix time of the first write (0: at once).")


def _tokens_limit(params: TokensParams) -> float:
    return max(0.0, params.start_at - time.time()) + params.chunks / params.rate + 60


@task_kind(
    "tokens",
    title="Token stream (benchmark)",
    description="Writes `chunks` chunks `<seq>:<unix time>;` at `rate` per second, from "
    "`start_at` on.",
    params=TokensParams,
    time_limit=_tokens_limit,
    max_time_limit=900,
)
def tokens(params: TokensParams, ctx: TaskContext) -> JsonValue:
    write = _writer(ctx)
    wait = params.start_at - time.time()
    if wait > 0:
        ctx.sleep(wait)
    interval = 1.0 / params.rate
    clock, now, sleep = time.perf_counter, time.time, time.sleep
    begin = clock()
    late = 0
    for seq in range(params.chunks):
        # An absolute schedule: a late write is not made up for by the next sleeps drifting.
        delay = begin + seq * interval - clock()
        if delay > 0:
            sleep(delay)
        elif delay < -0.005:
            late += 1
        write(f"{seq}:{now()!r};")
    seconds = clock() - begin
    return {"chunks": params.chunks, "seconds": round(seconds, 4), "late_writes": late}


class LoopParams(BaseModel):
    model_config = ConfigDict(extra="forbid")

    calls: int = Field(100_000, ge=1, le=10_000_000, description="Iterations of the loop.")
    op: Literal["text", "write", "empty", "progress"] = Field(
        "text", description="What each iteration does."
    )


@task_kind(
    "bench_loop",
    title="Context call loop (benchmark)",
    description="A loop of `calls` iterations of `op`, timed by the kind itself.",
    params=LoopParams,
    time_limit=lambda params: 600,
    max_time_limit=600,
)
def bench_loop(params: LoopParams, ctx: TaskContext) -> JsonValue:
    n = params.calls
    write = _writer(ctx) if params.op == "write" else None
    progress = ctx.progress
    cpu0, wall0 = time.process_time(), time.perf_counter()
    if params.op == "text":
        for i in range(n):
            text = f"{i} "
        del text
    elif params.op == "write":
        assert write is not None
        for i in range(n):
            write(f"{i} ")
    elif params.op == "empty":
        for _ in range(n):
            pass
    else:
        for i in range(n):
            progress(i, n)
    cpu, wall = time.process_time() - cpu0, time.perf_counter() - wall0
    return {"op": params.op, "calls": n, "cpu_s": round(cpu, 6), "wall_s": round(wall, 6)}
