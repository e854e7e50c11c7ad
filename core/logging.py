"""Structured logging with privacy built in.

Every log line passes :func:`mask_event`, which masks phone numbers (bare digits, ``+55…`` and
WhatsApp JIDs), replaces message text fields with ``[masked]``, removes secrets (API keys,
tokens, passwords — by field name, by shape such as ``Bearer …`` or ``apikey=…``, and every value
registered for the current request with :func:`remember_secrets`) and clips long values.
Tracebacks are rendered as plain text *without local variables* before masking, in every renderer,
and pass the same masking. Stdlib loggers (uvicorn, alembic…) go through the same processors.
"""

from __future__ import annotations

import logging
import re
import sys
from collections.abc import Callable, Iterable, Iterator, Mapping
from contextvars import ContextVar
from typing import Any

import structlog

# 8+ digits, optionally with a leading + and separators (space, dash, parentheses), or the digits of
# a JID/LID. Dots are not separators, so IP addresses and versions stay readable.
_PHONE_RE = re.compile(r"(?<![\w.:])(?!\d{4}-\d\d-\d\d)\+?\(?(?:\d[\s()-]{0,2}){7,}\d(?![\w.]*\.\d)(?=@|\b)")
_SECRET_KEYS = frozenset(
    {
        "apikey",
        "api_key",
        "authorization",
        "token",
        "password",
        "secret",
        "jwt",
        "jwt_key",
        "key_secret",
        "evolution_api_key",
        "llm_api_key",
        "s3_secret_access_key",
        "webhook_token",
    }
)
_TEXT_KEYS = frozenset(
    {
        "text",
        "body",
        "message",
        "conversation",
        "caption",
        "content",
        "payload",
        "transcript",
        "summary",
        "raw",
        "push_name",
        "pushname",
        "name",
    }
)
MASK = "[masked]"
REDACTED = "[redacted]"
# Longest string value a log line keeps (the rest is replaced by a count): input from strangers —
# a 200 KB instance name — must not inflate the log. Tracebacks (``exception``) are not clipped.
MAX_VALUE_CHARS = 160


def mask_phones(text: str) -> str:
    """Replace every phone-like digit run (keeping its last 2 digits) in ``text``."""
    return _PHONE_RE.sub(lambda m: "***" + re.sub(r"\D", "", m.group(0))[-2:], text)


# Secrets recognisable by shape: "Bearer <x>", "apikey: <x>" / "token=<x>", and BeaZap's own
# tokens (``bz_…``, ``whk_…``: a short prefix and 40+ url-safe characters).
_BEARER_RE = re.compile(r"(?i)\b(bearer\s+)[^\s'\",;]+")
_KEY_VALUE_RE = re.compile(
    r"(?i)\b((?:api[_-]?key|apikey|token|secret|password|authorization|jwt(?:_key)?)['\"]?\s*[:=]\s*['\"]?)"
    r"[^\s'\",;&}]+"
)
_OWN_TOKEN_RE = re.compile(r"\b[a-z]{2,5}_[A-Za-z0-9_-]{40,}")
_MIN_SECRET_CHARS = 6
SecretSource = Callable[[], Iterable[str | None]]
_request_secrets: ContextVar[tuple[str | SecretSource, ...]] = ContextVar("beazap_log_secrets", default=())


def remember_secrets(*values: str | None) -> None:
    """Never write these values (a request's token, API key…) in a log line of the current context."""
    found = tuple(v for v in values if v and len(v) >= _MIN_SECRET_CHARS)
    if found:
        _request_secrets.set(_request_secrets.get() + found)


def remember_secret_source(source: SecretSource) -> None:
    """Like :func:`remember_secrets` for values a hot path should not work out unless needed: ``source``
    is called only when a log line of the current context is masked (most requests write none)."""
    _request_secrets.set((*_request_secrets.get(), source))


def _current_secrets() -> Iterator[str]:
    for item in _request_secrets.get():
        if isinstance(item, str):
            yield item
        else:
            yield from (v for v in item() if v and len(v) >= _MIN_SECRET_CHARS)


def scrub(text: str) -> str:
    """``text`` with known and secret-looking values redacted and phone numbers masked."""
    for secret in _current_secrets():
        if secret in text:
            text = text.replace(secret, REDACTED)
    text = _BEARER_RE.sub(lambda m: m.group(1) + REDACTED, text)
    text = _KEY_VALUE_RE.sub(lambda m: m.group(1) + REDACTED, text)
    text = _OWN_TOKEN_RE.sub(REDACTED, text)
    return mask_phones(text)


def clip(text: str, limit: int = MAX_VALUE_CHARS) -> str:
    """``text`` cut to ``limit`` characters, saying how many were left out."""
    return text if len(text) <= limit else f"{text[:limit]}…[+{len(text) - limit} chars]"


def _mask_value(key: str, value: Any) -> Any:
    lowered = key.lower()
    if lowered in _SECRET_KEYS or lowered.endswith(("_token", "_secret", "_password", "_apikey")):
        return REDACTED
    if lowered in _TEXT_KEYS:
        return MASK
    if isinstance(value, str):
        return clip(scrub(value))
    if isinstance(value, Mapping):
        return {k: _mask_value(str(k), v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_mask_value(key, v) for v in value]
    return value


def mask_event(_logger: Any, _method: str, event_dict: dict[str, Any]) -> dict[str, Any]:
    """structlog processor: mask phones/text, drop secrets. ``event`` keeps its words, phones masked;
    a traceback (``exception``, already plain text) is scrubbed but not clipped."""
    masked: dict[str, Any] = {}
    for key, value in event_dict.items():
        if key == "exception" and isinstance(value, str):
            masked[key] = scrub(value)
        elif key == "event" and isinstance(value, str):
            masked[key] = clip(scrub(value), 4 * MAX_VALUE_CHARS)
        else:
            masked[key] = _mask_value(key, value)
    return masked


class _CurrentStderrHandler(logging.StreamHandler):  # type: ignore[type-arg]
    """Writes to whatever ``sys.stderr`` is at emit time (test runners and notebooks swap it)."""

    @property  # type: ignore[override]
    def stream(self) -> Any:
        return sys.stderr

    @stream.setter
    def stream(self, _value: Any) -> None:
        pass


def configure_logging(level: str = "INFO", json: bool = False, stream: Any = None) -> None:
    """Configure structlog and the stdlib root logger once per process."""
    shared: list[Any] = [
        structlog.contextvars.merge_contextvars,
        structlog.processors.add_log_level,
        structlog.processors.TimeStamper(fmt="iso", utc=True),
        structlog.stdlib.ExtraAdder(),
        structlog.processors.format_exc_info,  # plain traceback text, no local variables, then masked
        mask_event,
    ]
    renderer: Any = (
        structlog.processors.JSONRenderer()
        if json
        else structlog.dev.ConsoleRenderer(colors=False, exception_formatter=structlog.dev.plain_traceback)
    )
    structlog.configure(
        processors=[
            *shared[:1],
            structlog.stdlib.filter_by_level,
            *shared[1:],
            structlog.stdlib.ProcessorFormatter.wrap_for_formatter,
        ],
        logger_factory=structlog.stdlib.LoggerFactory(),
        wrapper_class=structlog.stdlib.BoundLogger,
        cache_logger_on_first_use=False,
    )
    formatter = structlog.stdlib.ProcessorFormatter(
        foreign_pre_chain=shared,
        processors=[structlog.stdlib.ProcessorFormatter.remove_processors_meta, renderer],
    )
    handler = logging.StreamHandler(stream) if stream is not None else _CurrentStderrHandler()
    handler.setFormatter(formatter)
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(level.upper())
    for noisy in ("uvicorn.access", "httpx", "httpcore", "alembic", "alembic.runtime.migration", "werkzeug"):
        logging.getLogger(noisy).setLevel(logging.WARNING)


def get_logger(name: str | None = None) -> structlog.stdlib.BoundLogger:
    return structlog.get_logger(name)
