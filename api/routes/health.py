"""Health and metrics: ``GET /healthz`` (process up), ``GET /readyz`` (lake writable), ``GET /metrics``."""

from __future__ import annotations

from fastapi import APIRouter, Request, Response
from fastapi.responses import JSONResponse

from api.ingest import metrics

router = APIRouter(tags=["health"])


@router.get("/healthz", summary="Liveness")
async def healthz() -> dict[str, str]:
    """The process is up and serving."""
    return {"status": "ok"}


@router.get("/readyz", summary="Readiness", responses={503: {"description": "Lake not writable."}})
async def readyz(request: Request) -> JSONResponse:
    """Ready to accept webhooks: the bronze table can be written and instance credentials are loaded."""
    receiver = getattr(request.app.state, "receiver", None)
    if receiver is None:
        return JSONResponse({"status": "ok", "receiver": "disabled"})
    ready, detail = await receiver.readiness()
    if ready:
        return JSONResponse({"status": "ok", **detail})
    return JSONResponse({"status": "unavailable", **detail, "error": detail.get("error") or "not ready"}, 503)


@router.get("/metrics", summary="Prometheus metrics", response_class=Response)
async def prometheus_metrics() -> Response:
    """Prometheus exposition (all workers' samples when run with several workers)."""
    data, content_type = metrics.render()
    return Response(content=data, media_type=content_type)
