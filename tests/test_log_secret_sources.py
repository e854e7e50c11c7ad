"""Secrets registered lazily (``core.logging.remember_secret_source``) are redacted like eager ones,
and are only worked out when a log line is actually written (the webhook hot path writes none)."""

from __future__ import annotations

import contextvars
import io
from collections.abc import Iterator

import pytest

from core.logging import configure_logging, get_logger, remember_secret_source, remember_secrets

SECRET = "whk_lazy-secret-value-0123"


@pytest.fixture(autouse=True)
def _restore_logging() -> Iterator[None]:
    yield
    configure_logging()  # back to stderr for the tests that follow


def test_lazy_secret_source_redacts_and_runs_only_when_logging() -> None:
    stream = io.StringIO()
    configure_logging("INFO", json=True, stream=stream)
    calls: list[int] = []

    def source() -> list[str | None]:
        calls.append(1)
        return [SECRET, None, "short"]

    def request(log_it: bool) -> None:
        remember_secret_source(source)
        if log_it:
            get_logger("test").warning(f"token was {SECRET} here", detail=f"x{SECRET}y")

    contextvars.copy_context().run(request, False)
    assert calls == []  # nothing logged: the request's secrets were never worked out
    contextvars.copy_context().run(request, True)
    output = stream.getvalue()
    assert calls, "the source must be asked when a line is masked"
    assert SECRET not in output
    assert output.count("[redacted]") == 2


def test_eager_and_lazy_secrets_add_up() -> None:
    stream = io.StringIO()
    configure_logging("INFO", json=True, stream=stream)
    eager = "eager-secret-value-987"

    def request() -> None:
        remember_secrets(eager)
        remember_secret_source(lambda: [SECRET])
        get_logger("test").warning("both", a=eager, b=SECRET)

    contextvars.copy_context().run(request)
    output = stream.getvalue()
    assert eager not in output and SECRET not in output
