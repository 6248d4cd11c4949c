"""Kinds that only the tests declare, loaded with `TASK_KIND_MODULES=tests.support.extra_kinds`.

The shipped kinds take numbers only; `echo` takes a string, so the tests can send any text through
the API, the worker and the event stream and check that it comes back intact. Only processes
started with that setting declare it: nothing here is imported by the test process itself.
"""

from pydantic import BaseModel, ConfigDict, Field, JsonValue

from taskstream.kinds import TaskContext, task_kind

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
