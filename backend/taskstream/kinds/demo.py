"""The three kinds of the original Flask + Celery demo (an addition, a long task, a flaky one),
and `generate`, which streams a text the way a language model's answer arrives."""

import random
from typing import Annotated

from pydantic import BaseModel, ConfigDict, Field, JsonValue, model_validator

from taskstream.kinds.base import RetryableError, RetryPolicy, TaskContext
from taskstream.kinds.registry import task_kind

# Numbers a browser can hold exactly (JavaScript's safe integers); the sum stays finite.
Number = Annotated[float, Field(ge=-(2**53), le=2**53, allow_inf_nan=False)]


class AddParams(BaseModel):
    model_config = ConfigDict(extra="forbid")

    x: Number = Field(description="First addend.", examples=[2])
    y: Number = Field(description="Second addend.", examples=[3])


@task_kind(
    "add",
    title="Add two numbers",
    description="Adds x and y and returns the sum. Finishes at once.",
    params=AddParams,
    max_time_limit=10,
    examples={"add": {"summary": "2 + 3", "value": {"kind": "add", "params": {"x": 2, "y": 3}}}},
)
def add(params: AddParams, ctx: TaskContext) -> JsonValue:
    return params.x + params.y


class LongParams(BaseModel):
    model_config = ConfigDict(extra="forbid")

    seconds: int = Field(5, ge=1, le=60, description="How long the task runs, in seconds.")


@task_kind(
    "long",
    title="Long task",
    description="Works for a number of seconds, reporting progress every second. Can be cancelled.",
    params=LongParams,
    time_limit=lambda params: params.seconds + 30,
    max_time_limit=90,
    examples={
        "long": {"summary": "5 seconds", "value": {"kind": "long", "params": {"seconds": 5}}}
    },
)
def long(params: LongParams, ctx: TaskContext) -> JsonValue:
    total = params.seconds
    ctx.progress(0, total, f"starting: {total} steps")
    for step in range(1, total + 1):
        ctx.sleep(1)
        ctx.progress(step, total, f"step {step} of {total}")
        ctx.log(f"step {step} of {total} done")
    return {"steps": total}


class UnreliableParams(BaseModel):
    model_config = ConfigDict(extra="forbid")

    failure_rate: float = Field(
        0.5, ge=0, le=1, description="Chance that an attempt fails (0 never, 1 always)."
    )
    max_retries: int = Field(3, ge=0, le=10, description="Retries after the first attempt.")


@task_kind(
    "unreliable",
    title="Unreliable task",
    description="Fails at random and is retried with exponential backoff and jitter; "
    "after the last retry it ends failed.",
    params=UnreliableParams,
    retry=lambda params: RetryPolicy(max_retries=params.max_retries, base_seconds=1, cap_seconds=8),
    max_time_limit=10,
    examples={
        "unreliable": {
            "summary": "fails half the time",
            "value": {"kind": "unreliable", "params": {"failure_rate": 0.5, "max_retries": 3}},
        }
    },
)
def unreliable(params: UnreliableParams, ctx: TaskContext) -> JsonValue:
    ctx.sleep(0.3)
    if random.random() < params.failure_rate:
        raise RetryableError(
            f"attempt {ctx.attempt} failed (simulated, rate {params.failure_rate})"
        )
    return {"succeeded_on_attempt": ctx.attempt}


WORDS = [
    "the",
    "quick",
    "brown",
    "fox",
    "jumps",
    "over",
    "a",
    "lazy",
    "dog",
    "while",
    "seven",
    "tired",
    "engineers",
    "watch",
    "every",
    "token",
    "of",
    "the",
    "answer",
    "arrive",
    "in",
    "order",
    "with",
    "nothing",
    "lost",
    "and",
    "nothing",
    "repeated",
    "after",
    "a",
    "reload",
]


class GenerateParams(BaseModel):
    model_config = ConfigDict(extra="forbid")

    words: int = Field(300, ge=1, le=20_000, description="How many words to write.")
    rate: float = Field(40, ge=1, le=2_000, description="Words written per second.")
    thinking: bool = Field(False, description="First write a short `thinking` stream.")

    @model_validator(mode="after")
    def _at_most_ten_minutes(self) -> "GenerateParams":
        if self.words / self.rate > 600:
            raise ValueError("words / rate must be at most 600 seconds of writing")
        return self


@task_kind(
    "generate",
    title="Generate text",
    description="Writes a text word by word at a chosen rate, as a language model's answer "
    "arrives: output, progress, log lines and metadata, live. Can be cancelled.",
    params=GenerateParams,
    time_limit=lambda params: params.words / params.rate + 30,
    max_time_limit=630,
    examples={
        "generate": {
            "summary": "300 words at 40 a second",
            "value": {"kind": "generate", "params": {"words": 300, "rate": 40}},
        }
    },
)
def generate(params: GenerateParams, ctx: TaskContext) -> JsonValue:
    pause = 1 / params.rate
    if params.thinking:
        ctx.set_metadata(stage="thinking")
        for word in ("Let", "me", "think", "about", "this."):
            ctx.write(word + " ", stream="thinking")
            ctx.sleep(pause)
    ctx.set_metadata(stage="writing", words=0)
    ctx.log(f"writing {params.words} words at {params.rate:g} a second")
    for n in range(params.words):
        ctx.write(WORDS[n % len(WORDS)] + ("\n" if n % 40 == 39 else " "))
        if n % 10 == 9 or n == params.words - 1:
            ctx.progress(n + 1, params.words, f"{n + 1} of {params.words} words")
            ctx.set_metadata(words=n + 1)
        if n == params.words // 2:
            ctx.log("half way")
        ctx.sleep(pause)
    ctx.set_metadata(stage="done")
    ctx.log("done")
    return {"words": params.words}
