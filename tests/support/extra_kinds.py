"""Kinds that only the tests declare, loaded with `TASK_KIND_MODULES=tests.support.extra_kinds`.

The shipped kinds take numbers only; `echo` takes a string, so the tests can send any text through
the API, the worker and the event stream and check that it comes back intact. `scribe` writes as
much output and as many log lines as asked, and can wait for the test to let it finish. Only
processes started with that setting declare them: nothing here is imported by the test process.
"""

import os
import time

from pydantic import BaseModel, ConfigDict, Field, JsonValue

from taskstream.kinds import RetryableError, RetryPolicy, TaskContext, task_kind

ECHO_MAX_LENGTH = 1000


class EchoParams(BaseModel):
    model_config = ConfigDict(extra="forbid")

    text: str = Field(max_length=ECHO_MAX_LENGTH, description="Any text; it comes back as is.")


@task_kind(
    "echo",
    title="Echo",
    description="Returns its text unchanged, after writing it as its output and reporting it "
    "as its progress message.",
    params=EchoParams,
    max_time_limit=10,
    examples={"echo": {"summary": "hello", "value": {"kind": "echo", "params": {"text": "hi"}}}},
)
def echo(params: EchoParams, ctx: TaskContext) -> JsonValue:
    ctx.write(params.text)
    ctx.progress(1, 1, params.text)
    return {"text": params.text}


class ScribeParams(BaseModel):
    model_config = ConfigDict(extra="forbid")

    writes: int = Field(0, ge=0, le=1_000_000, description="Pieces written to `output`.")
    lines: int = Field(0, ge=0, le=100_000, description="Log lines, spread among the writes.")
    gate: str = Field("", max_length=1000, description="A file to wait for after the lines.")
    tail: int = Field(0, ge=0, le=100_000, description="Pieces written once the gate is open.")
    tail_lines: int = Field(0, ge=0, le=100_000, description="Log lines after those pieces.")
    result_bytes: int = Field(0, ge=0, le=10_000_000, description="A result of this many x.")
    fail_first: bool = Field(False, description="The first attempt fails after its writes.")


def piece(n: int) -> str:
    """The `n`th piece a scribe writes: an astral character in each, so that a length counted in
    UTF-16 units or in bytes differs from one in code points."""
    return f"{n}\U0001f600 "


@task_kind(
    "scribe",
    title="Scribe",
    description="Writes `writes` pieces to `output` with `lines` log lines among them, waits for "
    "the file `gate` (if given), fails once if asked, writes `tail` pieces and `tail_lines` "
    "lines more, and returns `result_bytes` x's.",
    params=ScribeParams,
    retry=lambda params: RetryPolicy(max_retries=int(params.fail_first), base_seconds=0.1),
    time_limit=lambda _params: 120,
    max_time_limit=120,
)
def scribe(params: ScribeParams, ctx: TaskContext) -> JsonValue:
    step = max(1, params.writes // params.lines) if params.lines else 0
    logged = 0
    for n in range(params.writes):
        ctx.write(piece(n))
        if step and n % step == step - 1 and logged < params.lines:
            ctx.log(f"line {logged}")
            logged += 1
    for line in range(logged, params.lines):
        ctx.log(f"line {line}")
    if params.gate:
        deadline = time.monotonic() + 60
        while not os.path.exists(params.gate):
            if time.monotonic() > deadline:
                raise TimeoutError(f"{params.gate} never appeared")
            ctx.sleep(0.02)
    if params.fail_first and ctx.attempt == 1:
        ctx.write("of the first attempt only", stream="first")
        ctx.set_metadata(attempt=1)
        raise RetryableError("the first attempt fails, as asked")
    for n in range(params.writes, params.writes + params.tail):
        ctx.write(piece(n))
    for line in range(params.tail_lines):
        ctx.log(f"tail line {line}")
    if params.result_bytes:
        return "x" * params.result_bytes
    return {"pieces": params.writes + params.tail}
