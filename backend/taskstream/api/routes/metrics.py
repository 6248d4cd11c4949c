from fastapi import APIRouter, HTTPException, Response
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest

from taskstream.api.deps import MetricsDep, SettingsDep, StoreDep

router = APIRouter(tags=["health"])


@router.get(
    "/metrics",
    operation_id="getMetrics",
    summary="Prometheus metrics of this API process",
    response_class=Response,
    responses={200: {"content": {CONTENT_TYPE_LATEST: {"schema": {"type": "string"}}}}},
)
async def metrics(metrics: MetricsDep, store: StoreDep, settings: SettingsDep) -> Response:
    if metrics is None:
        raise HTTPException(404, "metrics are disabled")
    # Read asynchronously first: rendering (below, with no await in between) is synchronous.
    await metrics.read_redis(store, settings.queues())
    return Response(generate_latest(metrics.registry), media_type=CONTENT_TYPE_LATEST)
