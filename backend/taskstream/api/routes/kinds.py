from fastapi import APIRouter

from taskstream.api.deps import KindsDep, SettingsDep
from taskstream.api.schemas import TaskKindOut

router = APIRouter(prefix="/api", tags=["task kinds"])


@router.get(
    "/task-kinds",
    operation_id="listTaskKinds",
    summary="List the kinds of task",
    response_model=list[TaskKindOut],
)
async def list_kinds(kinds: KindsDep, settings: SettingsDep) -> list[TaskKindOut]:
    """Each kind with its title, description and the JSON Schema of its params."""
    return [TaskKindOut.of(kind, settings.queue_for(kind.name)) for kind in kinds]
