from fastapi import APIRouter, Response
from redis.exceptions import ConnectionError, TimeoutError

from taskstream.api.deps import StoreDep
from taskstream.api.schemas import Health, Readiness

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
    summary="Readiness: Redis answers and a worker is alive",
    response_model=Readiness,
    responses={503: {"model": Readiness, "description": "Redis or every worker is missing"}},
)
async def readyz(store: StoreDep, response: Response) -> Readiness:
    try:
        workers = await store.live_workers()
        redis_ok = True
    except (ConnectionError, TimeoutError, OSError):
        workers, redis_ok = 0, False
    ready = redis_ok and workers > 0
    if not ready:
        response.status_code = 503
        response.headers["Retry-After"] = "5"
    return Readiness(status="ready" if ready else "unavailable", redis=redis_ok, workers=workers)
