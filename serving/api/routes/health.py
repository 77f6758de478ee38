"""Liveness, readiness and Prometheus metrics (no key: probes and scrapers call them)."""

from __future__ import annotations

from fastapi import APIRouter
from starlette.responses import Response

from serving.api.deps import ServicesDep
from serving.api.responses import OrjsonResponse
from serving.schemas import Health, Readiness

router = APIRouter(tags=["health"])


@router.get("/healthz", response_model=Health)
async def healthz() -> Response:
    """The process is up (it may still be loading models)."""
    return OrjsonResponse({"status": "ok"})


@router.get("/readyz", response_model=Readiness, responses={503: {"model": Readiness,
                                                                   "description": "Models still loading."}})
async def readyz(services: ServicesDep) -> Response:
    """Ready once the required models are loaded; 503 until then."""
    store = services.store
    snap = store.snapshot
    body = {"ready": store.ready, "models": {k: i.label for k, i in snap.models.items()} if snap else {},
            "missing": store.missing}
    return OrjsonResponse(body, status_code=200 if store.ready else 503)


@router.get("/metrics", response_class=Response,
            responses={200: {"content": {"text/plain": {"schema": {"type": "string"}}},
                             "description": "Prometheus exposition format."}})
async def metrics(services: ServicesDep) -> Response:
    """Prometheus metrics: latency per route, requests by status, model versions, reloads, events."""
    body, content_type = services.metrics.render()
    return Response(body, media_type=content_type)
