"""The supervisor's web dashboard, served under ``/app`` by the API process (docs/dashboard.md).

Server-rendered pages (Jinja2) with small islands of JavaScript (uPlot charts), a message catalogue
per language and one formatting module. Every figure comes from the metrics API itself, called
in-process with the logged-in user's scope (``api.web.data``): one computation, two renderings.
"""

from __future__ import annotations

from pathlib import Path

from fastapi import FastAPI
from fastapi.responses import RedirectResponse
from fastapi.staticfiles import StaticFiles
from starlette.middleware.gzip import GZipMiddleware
from starlette.types import ASGIApp, Receive, Scope, Send

STATIC_DIR = Path(__file__).with_name("static")


class WebGzip:
    """gzip for the dashboard's pages and static files only (``/app``); the APIs' answers are left as they are."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app
        self.gzip = GZipMiddleware(app, minimum_size=500)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http" and scope["path"].startswith("/app"):
            await self.gzip(scope, receive, send)
        else:
            await self.app(scope, receive, send)


def mount(app: FastAPI) -> None:
    """Add the dashboard's pages, its static files and the ``/`` → ``/app`` redirect to ``app``."""
    from api.web import admin, console_chat, console_queue, routes

    app.include_router(routes.router)
    app.include_router(admin.router)
    app.include_router(console_queue.router)
    app.include_router(console_chat.router)
    app.mount("/app/static", StaticFiles(directory=STATIC_DIR), name="web-static")

    app.add_middleware(WebGzip)

    @app.get("/", include_in_schema=False)
    def _root() -> RedirectResponse:
        return RedirectResponse("/app", status_code=307)
