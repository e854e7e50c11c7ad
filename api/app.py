"""The BeaZap FastAPI application: webhook receiver, metrics API and operational API.

``create_app()`` is the factory used by ``beazap serve`` (uvicorn ``--factory``) and the tests.
Errors always answer JSON: ``{"error": "...", "detail": ...}``.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from fastapi import Depends, FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from starlette.exceptions import HTTPException

from api.errors import LogSafetyMiddleware
from api.ingest.lifespan import receiver_lifespan
from api.input_guard import reject_nul_characters
from api.routes import admin, console, health, insights, live_stream, metrics, operations, webhooks
from api.web import mount as mount_web
from core.settings import Settings, get_settings


@asynccontextmanager
async def lifespan(app: FastAPI) -> AsyncIterator[None]:
    """Process start/stop: the webhook receiver (bronze writers, credential cache), the live feed."""
    async with receiver_lifespan(app):
        yield
        await live_stream.stop_live_feed(app)


def create_app(settings: Settings | None = None) -> FastAPI:
    settings = settings or get_settings()
    app = FastAPI(
        title="BeaZap",
        version="0.1.0",
        description="WhatsApp customer-service analytics over Evolution API: webhook receiver, "
        "metrics and operational API.",
        lifespan=lifespan,
    )
    app.state.settings = settings

    @app.exception_handler(HTTPException)
    async def _http_error(_request: Request, exc: HTTPException) -> JSONResponse:
        return JSONResponse(
            status_code=exc.status_code, content={"error": exc.detail}, headers=getattr(exc, "headers", None)
        )

    @app.exception_handler(RequestValidationError)
    async def _validation_error(_request: Request, exc: RequestValidationError) -> JSONResponse:
        return JSONResponse(status_code=422, content={"error": "invalid request", "detail": jsonable_errors(exc)})

    app.include_router(health.router)
    app.include_router(webhooks.router)
    guarded = [Depends(reject_nul_characters)]  # every API route; the receiver quarantines instead
    app.include_router(metrics.router, dependencies=guarded)
    app.include_router(operations.router, dependencies=guarded)
    app.include_router(insights.router, dependencies=guarded)
    app.include_router(console.router, dependencies=guarded)
    app.include_router(live_stream.router, dependencies=guarded)
    app.include_router(admin.router, dependencies=guarded)
    mount_web(app)  # the web dashboard under /app (docs/dashboard.md)
    app.add_middleware(webhooks.WebhookFastPath)
    app.add_middleware(LogSafetyMiddleware)  # outermost: added last
    return app


def jsonable_errors(exc: RequestValidationError) -> list[dict[str, object]]:
    return [{"loc": list(e.get("loc", ())), "msg": e.get("msg", ""), "type": e.get("type", "")} for e in exc.errors()]
