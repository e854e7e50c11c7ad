"""Health and metrics: ``GET /healthz`` (process up), ``GET /readyz`` (lake writable, projector lag),
``GET /metrics``."""

from __future__ import annotations

from fastapi import APIRouter, FastAPI, Query, Request, Response
from fastapi.responses import JSONResponse

from api.ingest import metrics
from api.ingest.projector_watch import ProjectorWatch
from core.settings import Settings, get_settings

router = APIRouter(tags=["health"])


def _watch(app: FastAPI) -> ProjectorWatch:
    watch: ProjectorWatch | None = getattr(app.state, "projector_watch", None)
    if watch is None:
        from storage.db import get_engine
        from storage.lake import Lake

        settings: Settings = getattr(app.state, "settings", None) or get_settings()
        receiver = getattr(app.state, "receiver", None)
        lake = receiver.lake if receiver is not None else Lake.from_settings(settings)
        watch = ProjectorWatch(
            lake,
            lambda: getattr(app.state, "engine", None) or get_engine(settings),
            settings.projector_stuck_seconds,
        )
        app.state.projector_watch = watch
    return watch


@router.get("/healthz", summary="Liveness")
async def healthz() -> dict[str, str]:
    """The process is up and serving."""
    return {"status": "ok"}


@router.get(
    "/readyz",
    summary="Readiness",
    responses={503: {"description": "Lake not writable (or, with strict=true, the live projector is stuck)."}},
)
async def readyz(
    request: Request,
    strict: bool = Query(False, description="Also answer 503 when the live projector (beazap worker) is stuck."),
) -> JSONResponse:
    """Ready to accept webhooks: the bronze table can be written and instance credentials are loaded.

    ``projector`` tells whether ``beazap worker`` keeps up with bronze (``ok`` / ``stuck`` /
    ``unknown``, with ``lag_seconds``). A stuck projector does not make the receiver unready —
    webhooks must keep landing in bronze — unless ``strict=true`` is asked.
    """
    projector = await _watch(request.app).status()
    receiver = getattr(request.app.state, "receiver", None)
    if receiver is None:
        return JSONResponse({"status": "ok", "receiver": "disabled", "projector": projector})
    ready, detail = await receiver.readiness()
    detail["projector"] = projector
    if ready and not (strict and projector["status"] == "stuck"):
        return JSONResponse({"status": "ok", **detail})
    error = detail.get("error") or ("the live projector is stuck" if ready else "not ready")
    return JSONResponse({"status": "unavailable", **detail, "error": error}, 503)


@router.get("/metrics", summary="Prometheus metrics", response_class=Response)
async def prometheus_metrics(request: Request) -> Response:
    """Prometheus exposition (all workers' samples when run with several workers)."""
    await _watch(request.app).status()  # refreshes beazap_projector_lag_seconds
    data, content_type = metrics.render()
    return Response(content=data, media_type=content_type)
