"""Webhook routes: ``POST /webhooks/evolution`` and the ``webhook_by_events`` form ``/webhooks/evolution/{suffix}``.

Thin HTTP layer over :class:`api.ingest.receiver.Receiver`: it reads the body under the size
limit (413), hands it over with the headers, client address and URL suffix, and writes the JSON
answer. See ``docs/receiver.md`` for set-up and status codes.

The webhook is the one hot path (thousands of requests a second), so :class:`WebhookFastPath`, a
pure ASGI middleware, serves it before FastAPI's routing and dependency machinery, which in an app
with every metrics and operations route cost more CPU per request than the receiver itself
(benchmarks/RESULTS.md, ingest). The FastAPI routes stay: they document the endpoints in the
OpenAPI schema and answer exactly the same when the middleware is not installed.
"""

from __future__ import annotations

import time

import orjson
from fastapi import APIRouter, Request, Response
from starlette.types import ASGIApp, Receive, Scope, Send

from api.ingest import metrics
from api.ingest.receiver import Outcome, Receiver, reject

PATH = "/webhooks/evolution"
router = APIRouter(prefix="/webhooks", tags=["webhooks"])

_RESPONSES: dict[int | str, dict[str, object]] = {
    200: {"description": "Committed to bronze: `{status, receipt_id, event}`."},
    400: {"description": "Not JSON, not an object, or no `event`/`instance` (never retried by Evolution)."},
    401: {"description": "Unknown instance, wrong token or expired JWT."},
    413: {"description": "Body larger than `BEAZAP_MAX_BODY_BYTES`."},
    422: {"description": "Authenticated but malformed: kept in `bronze/quarantine`."},
    503: {"description": "Lake (or credential store) unavailable: retry later; nothing was accepted."},
}


class _BodyTooLargeError(Exception):
    pass


async def _read_body(request: Request, limit: int) -> bytes:
    declared = request.headers.get("content-length")
    if declared is not None and declared.isdigit() and int(declared) > limit:
        raise _BodyTooLargeError
    chunks: list[bytes] = []
    size = 0
    async for chunk in request.stream():
        size += len(chunk)
        if size > limit:
            raise _BodyTooLargeError
        chunks.append(chunk)
    return b"".join(chunks)


def _answer(outcome: Outcome, started: float) -> Response:
    metrics.REQUEST_SECONDS.labels(str(outcome.status)).observe(time.perf_counter() - started)
    return Response(
        content=orjson.dumps(outcome.body),
        status_code=outcome.status,
        media_type="application/json",
        headers=outcome.headers or None,
    )


async def _receive(request: Request, suffix: str | None) -> Response:
    started = time.perf_counter()
    receiver: Receiver | None = getattr(request.app.state, "receiver", None)
    if receiver is None:
        return _answer(reject(503, "receiver_disabled", "the webhook receiver is not running"), started)
    try:
        body = await _read_body(request, receiver.settings.max_body_bytes)
    except _BodyTooLargeError:
        limit = receiver.settings.max_body_bytes
        return _answer(reject(413, "too_large", f"body larger than {limit} bytes"), started)
    client = request.client.host if request.client else None
    outcome = await receiver.handle(body, request.headers, client, suffix)
    return _answer(outcome, started)


@router.post("/evolution", responses=_RESPONSES, summary="Receive an Evolution API webhook")
async def receive(request: Request) -> Response:
    """One Evolution API v2 webhook (single-URL mode). Answers 200 only after the bronze commit."""
    return await _receive(request, None)


@router.post("/evolution/{event_suffix}", responses=_RESPONSES, summary="Receive a per-event webhook")
async def receive_by_event(event_suffix: str, request: Request) -> Response:
    """``webhook_by_events`` mode: the URL ends with the kebab event (``messages-upsert``).

    The body's ``event`` is authoritative and must name the same event as the suffix
    (``messages.upsert`` ≡ ``messages-upsert``); a contradiction is quarantined (422).
    """
    return await _receive(request, event_suffix)


class WebhookFastPath:
    """ASGI middleware: ``POST /webhooks/evolution[/<suffix>]`` goes straight to the receiver."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http" and scope["method"] == "POST":
            path: str = scope["path"]
            suffix: str | None = None
            if path == PATH or (
                path.startswith(PATH + "/") and "/" not in (suffix := path[len(PATH) + 1 :]) and suffix
            ):
                response = await _receive(Request(scope, receive), suffix)
                await response(scope, receive, send)
                return
        await self.app(scope, receive, send)
