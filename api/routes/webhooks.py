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
from starlette.requests import ClientDisconnect
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


_WANTED_HEADERS = {b"apikey": "apikey", b"authorization": "authorization", b"content-length": "content-length"}
_JSON_TYPE = (b"content-type", b"application/json")


def _headers(scope: Scope) -> dict[str, str]:
    """The request headers the receiver reads (first occurrence of each, latin-1 as in Starlette)."""
    found: dict[str, str] = {}
    for name, value in scope["headers"]:
        key = _WANTED_HEADERS.get(name)
        if key is not None and key not in found:
            found[key] = value.decode("latin-1")
    return found


async def _read_body(receive: Receive, limit: int) -> bytes | None:
    """The request body, or None when it grows past ``limit`` (ClientDisconnect as Starlette's)."""
    chunks: list[bytes] = []
    size = 0
    while True:
        message = await receive()
        if message["type"] == "http.disconnect":
            raise ClientDisconnect
        chunk: bytes = message.get("body", b"")
        size += len(chunk)
        if size > limit:
            return None
        if not message.get("more_body", False):
            if not chunks:
                return chunk
            chunks.append(chunk)
            return b"".join(chunks)
        chunks.append(chunk)


async def _handle(scope: Scope, receive: Receive, suffix: str | None) -> tuple[Outcome, bytes]:
    """One webhook from the raw ASGI request to its outcome and JSON answer body (request metric included)."""
    started = time.perf_counter()
    receiver: Receiver | None = getattr(scope["app"].state, "receiver", None)
    if receiver is None:
        outcome = reject(503, "receiver_disabled", "the webhook receiver is not running")
    else:
        headers = _headers(scope)
        limit = receiver.settings.max_body_bytes
        declared = headers.get("content-length")
        too_large = declared is not None and declared.isdigit() and int(declared) > limit
        body = None if too_large else await _read_body(receive, limit)
        if body is None:
            outcome = reject(413, "too_large", f"body larger than {limit} bytes")
        else:
            client = scope.get("client")
            outcome = await receiver.handle(body, headers, client[0] if client else None, suffix)
    answer = orjson.dumps(outcome.body)
    metrics.observe_request(outcome.status, time.perf_counter() - started)
    return outcome, answer


def _response(outcome: Outcome, answer: bytes) -> Response:
    return Response(answer, outcome.status, outcome.headers or None, media_type="application/json")


@router.post("/evolution", responses=_RESPONSES, summary="Receive an Evolution API webhook")
async def receive(request: Request) -> Response:
    """One Evolution API v2 webhook (single-URL mode). Answers 200 only after the bronze commit."""
    return _response(*await _handle(request.scope, request.receive, None))


@router.post("/evolution/{event_suffix}", responses=_RESPONSES, summary="Receive a per-event webhook")
async def receive_by_event(event_suffix: str, request: Request) -> Response:
    """``webhook_by_events`` mode: the URL ends with the kebab event (``messages-upsert``).

    The body's ``event`` is authoritative and must name the same event as the suffix
    (``messages.upsert`` ≡ ``messages-upsert``); a contradiction is quarantined (422).
    """
    return _response(*await _handle(request.scope, request.receive, event_suffix))


class WebhookFastPath:
    """ASGI middleware: ``POST /webhooks/evolution[/<suffix>]`` goes straight to the receiver, read
    and answered with raw ASGI messages (no Request/Headers/Response objects per webhook)."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http" and scope["method"] == "POST":
            path: str = scope["path"]
            suffix: str | None = None
            if path == PATH or (
                path.startswith(PATH + "/") and "/" not in (suffix := path[len(PATH) + 1 :]) and suffix
            ):
                outcome, answer = await _handle(scope, receive, suffix)
                headers = [_JSON_TYPE, (b"content-length", str(len(answer)).encode())]
                headers += [(k.lower().encode("latin-1"), v.encode("latin-1")) for k, v in outcome.headers.items()]
                await send({"type": "http.response.start", "status": outcome.status, "headers": headers})
                await send({"type": "http.response.body", "body": answer})
                return
        await self.app(scope, receive, send)
