"""App-wide safety net: a request's credentials never reach a log line, and an unhandled error is
answered ``500 {"error": "internal error"}`` and logged once, masked (``core.logging``).

:class:`LogSafetyMiddleware` is the outermost ASGI layer. It registers the secrets the request
carries (``Authorization``, ``apikey``, cookies, token-like query parameters) with
:func:`core.logging.remember_secret_source` (worked out only when a line is logged), so every log
line written while serving it has them redacted,
and it catches whatever escaped the app so the server never prints its own traceback.
"""

from __future__ import annotations

from functools import partial
from urllib.parse import parse_qsl

import orjson
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from core.logging import get_logger, remember_secret_source

log = get_logger("beazap.api")

_SECRET_HEADERS = frozenset({b"authorization", b"apikey", b"x-api-key", b"cookie", b"jwt_key"})
_SECRET_PARAMS = ("token", "key", "secret", "password")


def _request_secrets(scope: Scope) -> list[str]:
    found: list[str] = []
    for name, value in scope.get("headers") or []:
        if name.lower() in _SECRET_HEADERS:
            text = value.decode("latin-1").strip()
            found.append(text)
            found.extend(part for part in text.replace("=", " ").replace(";", " ").split()[1:])
    query = scope.get("query_string") or b""
    for name, value in parse_qsl(query.decode("latin-1"), keep_blank_values=False):
        if any(word in name.lower() for word in _SECRET_PARAMS):
            found.append(value)
    return found


class LogSafetyMiddleware:
    """Outermost ASGI middleware: redact the request's secrets in logs; turn escaped errors into 500."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        remember_secret_source(partial(_request_secrets, scope))  # worked out only if a line is logged
        started = False

        async def tracking_send(message: Message) -> None:
            nonlocal started
            if message["type"] == "http.response.start":
                started = True
            await send(message)

        try:
            await self.app(scope, receive, tracking_send)
        except Exception:
            log.exception("unhandled error", method=scope.get("method"), path=scope.get("path"))
            if started:
                return  # the answer is already on its way; nothing more can be said
            await send(
                {
                    "type": "http.response.start",
                    "status": 500,
                    "headers": [(b"content-type", b"application/json")],
                }
            )
            await send({"type": "http.response.body", "body": orjson.dumps({"error": "internal error"})})
