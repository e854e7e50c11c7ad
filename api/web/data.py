"""The dashboard's one adapter to the API: calls the API's own endpoints in-process with the user's scope.

The pages therefore show exactly the API's figures (same validation, same tenant scoping, same
cache) without knowing where the metrics are computed. The caller's scope travels in the ASGI scope
under ``api.auth.WEB_SCOPE_KEY``, which only in-process calls can set; forms check their CSRF token
before calling a writing endpoint.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any
from urllib.parse import quote, urlencode

import orjson
from starlette.types import ASGIApp, Message

from api.auth import WEB_SCOPE_KEY
from storage.tokens import TenantScope


@dataclass(frozen=True)
class ApiAnswer:
    status: int
    body: bytes
    headers: dict[str, str]

    @property
    def ok(self) -> bool:
        return 200 <= self.status < 300

    def json(self) -> Any:
        return orjson.loads(self.body) if self.body else None

    @property
    def error(self) -> str:
        """The API's error message (``{"error": …}``), for an error page."""
        try:
            data = self.json()
        except orjson.JSONDecodeError:
            return ""
        return str(data.get("error", "")) if isinstance(data, dict) else ""


def segment(value: object) -> str:
    """One path segment from user input (an instance or conversation id); a ``/`` would change the route."""
    text = str(value or "")
    if not text or "/" in text:
        raise ValueError("invalid id")
    return text


def _params(params: dict[str, Any] | None) -> str:
    pairs: list[tuple[str, str]] = []
    for key, value in (params or {}).items():
        values = value if isinstance(value, list | tuple) else [value]
        pairs += [(key, str(v)) for v in values if v is not None and v != ""]
    return urlencode(pairs)


async def call(
    app: ASGIApp,
    scope: TenantScope,
    method: str,
    path: str,
    params: dict[str, Any] | None = None,
    body: Any = None,
    accept: str = "application/json",
) -> ApiAnswer:
    """One API request answered by ``app`` in this process, as the user behind ``scope``."""
    payload = orjson.dumps(body) if body is not None else b""
    headers = [(b"host", b"beazap.internal"), (b"accept", accept.encode())]
    if body is not None:
        headers += [(b"content-type", b"application/json"), (b"content-length", str(len(payload)).encode())]
    asgi_scope: dict[str, Any] = {
        "type": "http",
        "asgi": {"version": "3.0"},
        "http_version": "1.1",
        "method": method,
        "scheme": "http",
        "path": path,
        "raw_path": quote(path).encode(),
        "root_path": "",
        "query_string": _params(params).encode(),
        "headers": headers,
        "client": ("127.0.0.1", 0),
        "server": ("beazap.internal", 80),
        "state": {},
        WEB_SCOPE_KEY: scope,
    }
    sent = False

    async def receive() -> Message:
        nonlocal sent
        if sent:
            return {"type": "http.disconnect"}
        sent = True
        return {"type": "http.request", "body": payload, "more_body": False}

    status = 500
    chunks: list[bytes] = []
    out_headers: dict[str, str] = {}

    async def send(message: Message) -> None:
        nonlocal status
        if message["type"] == "http.response.start":
            status = message["status"]
            out_headers.update({k.decode().lower(): v.decode() for k, v in message.get("headers", [])})
        elif message["type"] == "http.response.body":
            chunks.append(message.get("body", b""))

    await app(asgi_scope, receive, send)
    return ApiAnswer(status, b"".join(chunks), out_headers)
