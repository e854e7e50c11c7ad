"""Structured logging with privacy built in.

Every log line passes :func:`mask_event`, which masks phone numbers (bare digits, ``+55…`` and
WhatsApp JIDs), replaces message text fields with ``[masked]`` and removes secrets (API keys,
tokens, passwords). Stdlib loggers (uvicorn, alembic…) go through the same processors.
"""

from __future__ import annotations

import logging
import re
import sys
from collections.abc import Mapping
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


def mask_phones(text: str) -> str:
    """Replace every phone-like digit run (keeping its last 2 digits) in ``text``."""
    return _PHONE_RE.sub(lambda m: "***" + re.sub(r"\D", "", m.group(0))[-2:], text)


def _mask_value(key: str, value: Any) -> Any:
    lowered = key.lower()
    if lowered in _SECRET_KEYS or lowered.endswith(("_token", "_secret", "_password", "_apikey")):
        return REDACTED
    if lowered in _TEXT_KEYS:
        return MASK
    if isinstance(value, str):
        return mask_phones(value)
    if isinstance(value, Mapping):
        return {k: _mask_value(str(k), v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_mask_value(key, v) for v in value]
    return value


def mask_event(_logger: Any, _method: str, event_dict: dict[str, Any]) -> dict[str, Any]:
    """structlog processor: mask phones/text, drop secrets. ``event`` keeps its words, phones masked."""
    masked: dict[str, Any] = {}
    for key, value in event_dict.items():
        if key == "event" and isinstance(value, str):
            masked[key] = mask_phones(value)
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
        mask_event,
    ]
    renderer: Any = structlog.processors.JSONRenderer() if json else structlog.dev.ConsoleRenderer(colors=False)
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
