"""Request and response models of the HTTP API that are not the shared task and event models."""

from typing import Annotated, Any, Literal, Protocol, Union

from pydantic import BaseModel, ConfigDict, Field, StrictBool, create_model, model_validator

from taskstream.events.models import MAX_TAGS, TAG_PATTERN
from taskstream.kinds import KindRegistry, TaskKind
from taskstream.kinds.registry import params_are_optional


class TaskRequest(Protocol):
    """What every generated `<Kind>TaskCreate` model has."""

    kind: str
    params: BaseModel
    tags: list[str]
    watch_token: bool


Tag = Annotated[str, Field(pattern=TAG_PATTERN, examples=["user:42"])]
TAGS_FIELD: Any = (
    list[Tag],
    Field(
        default_factory=list,
        max_length=MAX_TAGS,
        description="Short labels to find the task by (`?tag=` on the task list and streams).",
    ),
)


WATCH_TOKEN_FIELD: Any = (
    StrictBool,  # `"yes"` is no boolean
    Field(
        False,
        description="Also answer a watch token that reads this task (`watch_token`), as "
        "`POST /api/tasks/{task_id}/tokens` would: submit and hand a page the token at once.",
    ),
)


def _strict(params: type[BaseModel]) -> type[BaseModel]:
    """The params model taking JSON as its JSON Schema says: `"5"` or `true` is no number
    (pydantic would convert them), while `5.0` is an integer."""
    integers = {name for name, field in params.model_fields.items() if field.annotation is int}

    def integral_floats(cls: type[BaseModel], data: Any) -> Any:
        if not isinstance(data, dict):
            return data
        return {
            name: int(value)
            if name in integers and isinstance(value, float) and value.is_integer()
            else value
            for name, value in data.items()
        }

    namespace = {
        "model_config": ConfigDict(strict=True),
        "__module__": params.__module__,
        "_integral_floats": model_validator(mode="before")(integral_floats),
    }
    return type(params.__name__, (params,), namespace)


def _request_model(kind: TaskKind[Any]) -> type[BaseModel]:
    camel = "".join(part.capitalize() for part in kind.name.split("_"))
    tag: Any = Literal[kind.name]
    strict = _strict(kind.params)
    params: Any = (strict, Field(default_factory=strict))
    if not params_are_optional(kind.params):
        params = (strict, ...)
    return create_model(
        f"{camel}TaskCreate",
        __config__=ConfigDict(extra="forbid", title=f"{kind.title} ({kind.name})"),
        kind=(tag, Field(description=kind.description)),
        params=params,
        tags=TAGS_FIELD,
        watch_token=WATCH_TOKEN_FIELD,
    )


def task_create_type(kinds: KindRegistry) -> Any:
    """The body of `POST /api/tasks`: a union of one model per kind, told apart by `kind`."""
    models = tuple(_request_model(kind) for kind in kinds)
    if len(models) == 1:
        return models[0]
    return Annotated[Union[models], Field(discriminator="kind")]  # noqa: UP007


def request_examples(kinds: KindRegistry) -> dict[str, Any]:
    return {name: example for kind in kinds for name, example in kind.examples.items()}


class TaskKindOut(BaseModel):
    name: str = Field(examples=["long"])
    title: str = Field(examples=["Long task"])
    description: str
    params_schema: dict[str, Any] = Field(description="JSON Schema of the kind's params.")
    queue: str = Field(description="The queue its tasks go to.", examples=["taskstream"])

    @classmethod
    def of(cls, kind: TaskKind[Any], queue: str) -> "TaskKindOut":
        return cls(
            name=kind.name,
            title=kind.title,
            description=kind.description,
            params_schema=kind.params.model_json_schema(),
            queue=queue,
        )


def token_request_type(max_ttl_seconds: int) -> type[BaseModel]:
    """The body of a token request, bounded as the settings bound a token's lifetime."""
    ttl: Any = (
        int | None,
        Field(
            None,
            ge=10,
            le=max_ttl_seconds,
            description="How long the token lasts (default WATCH_TOKEN_TTL_SECONDS, at most "
            "WATCH_TOKEN_MAX_TTL_SECONDS).",
            examples=[900],
        ),
    )
    model: type[BaseModel] = create_model(
        "TokenRequest", __config__=ConfigDict(extra="forbid"), ttl_seconds=ttl
    )
    return model


class Health(BaseModel):
    status: Literal["ok"] = "ok"


class Readiness(BaseModel):
    status: Literal["ready", "unavailable"]
    redis: bool = Field(description="Redis answered.")
    warnings: list[str] = Field(
        default_factory=list,
        description="What the Redis found breaks of what taskstream needs (eviction, no "
        "append-only persistence, Cluster).",
    )


class Workers(BaseModel):
    alive: int = Field(description="Workers with a fresh heartbeat.")
    names: list[str] = Field(description="Their names (Celery's node names).")
