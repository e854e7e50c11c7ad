"""Helpers shared by CLI commands: logging set-up, console output, clean failures."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any, NoReturn

import typer
from rich.console import Console

from core.logging import configure_logging
from core.settings import get_settings

console = Console()
err_console = Console(stderr=True)


def setup() -> None:
    settings = get_settings()
    configure_logging(settings.log_level, settings.log_json)


def fail(message: str, code: int = 1) -> NoReturn:
    """Print ``message`` to stderr and exit with ``code`` (≠ 0)."""
    err_console.print(f"[bold red]error:[/] {message}")
    raise typer.Exit(code)


def ops_engine() -> Any:
    """The operational store's engine, migrated to the newest schema."""
    from storage import migrate
    from storage.db import get_engine

    engine = get_engine()
    migrate.upgrade(engine)
    return engine


def operator_scope(engine: Any, instance_id: str | None = None) -> Any:
    """An admin scope for the command line: the account of ``instance_id`` (every instance otherwise)."""
    from sqlalchemy import select

    from storage.tables import instances
    from storage.tokens import TenantScope

    with engine.connect() as conn:
        rows = conn.execute(select(instances.c.id, instances.c.account_id)).all()
    account = next((r.account_id for r in rows if r.id == instance_id), None)
    if instance_id is not None and account is None:
        fail(f"instance {instance_id!r} not found (see `beazap instance list`)")
    ids = frozenset(r.id for r in rows if account is None or r.account_id == account)
    return TenantScope(account or "*", "cli", "admin", ids)


@contextmanager
def repo_errors() -> Iterator[None]:
    """Repository and validation errors → a clear message and exit 1 (as the API's 4xx)."""
    from pydantic import ValidationError

    from core.instance_config import ConfigError
    from storage.ops_repo import ConflictError, InvalidError, NotFoundError

    try:
        yield
    except ValidationError as exc:
        fail(
            "; ".join(f"{'.'.join(map(str, e['loc'])) or 'value'}: {e['msg']}" for e in exc.errors(include_input=False))
        )
    except (ConfigError, InvalidError, NotFoundError, ConflictError) as exc:
        fail(str(exc).strip("'\""))
