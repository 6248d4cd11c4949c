from fastapi import APIRouter, Response
from redis.exceptions import ConnectionError, TimeoutError

from taskstream.api.deps import StoreDep
from taskstream.api.schemas import Health, Readiness, Workers
from taskstream.events import requirements

router = APIRouter(tags=["health"])


@router.get(
    "/healthz",
    operation_id="getLiveness",
    summary="Liveness: the process is up",
    response_model=Health,
)
async def healthz() -> Health:
    return Health()


@router.get(
    "/readyz",
    operation_id="getReadiness",
    summary="Readiness: Redis answers",
    response_model=Readiness,
    responses={503: {"model": Readiness, "description": "Redis does not answer"}},
)
async def readyz(store: StoreDep, response: Response) -> Readiness:
    """Ready when this API process can reach Redis: it then accepts tasks and streams events,
    whether or not a worker is alive (`/workers` tells that). `warnings` name what the Redis
    found breaks of what taskstream needs (see the README's "What taskstream needs of Redis")."""
    try:
        warnings = await requirements.shortfalls(store.redis)
    except (ConnectionError, TimeoutError, OSError):
        response.status_code = 503
        response.headers["Retry-After"] = "5"
        return Readiness(status="unavailable", redis=False)
    return Readiness(status="ready", redis=True, warnings=warnings)


@router.get(
    "/workers",
    operation_id="getWorkers",
    summary="Workers: whose heartbeat is fresh",
    response_model=Workers,
    responses={503: {"model": Workers, "description": "No worker is alive, or Redis is away"}},
)
async def workers(store: StoreDep, response: Response) -> Workers:
    """The workers whose heartbeat is at most WORKER_STALE_SECONDS old; `503` when there is
    none (tasks are accepted and wait queued). For a probe or an alert on the workers, apart from
    the API's own readiness."""
    try:
        names = await store.live_worker_names()
    except (ConnectionError, TimeoutError, OSError):
        names = []
    if not names:
        response.status_code = 503
        response.headers["Retry-After"] = "5"
    return Workers(alive=len(names), names=names)
