"""What each problem `type` means: RFC 9457 asks that a type URI document its problem."""

from typing import Annotated

from fastapi import APIRouter, Path

from taskstream.api.models import ProblemType
from taskstream.api.problems import PROBLEMS_PATH, problem_types, responses
from taskstream.errors import NotFound

router = APIRouter(prefix=PROBLEMS_PATH, tags=["problems"])
TYPES = problem_types()


@router.get(
    "",
    operation_id="listProblemTypes",
    summary="Every kind of problem the API answers",
    response_model=list[ProblemType],
)
async def list_problem_types() -> list[ProblemType]:
    return list(TYPES.values())


@router.get(
    "/{code}",
    operation_id="getProblemType",
    summary="What a kind of problem means",
    response_model=ProblemType,
    responses=responses(404, 422),
)
async def get_problem_type(
    code: Annotated[str, Path(pattern=r"^[a-z_]{1,40}$", description="A problem's code.")],
) -> ProblemType:
    known = TYPES.get(code)
    if known is None:
        raise NotFound(f"no problem type {code!r}; GET {PROBLEMS_PATH} lists them")
    return known
