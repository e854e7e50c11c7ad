"""Helpers shared by CLI commands: logging set-up, console output, clean failures."""

from __future__ import annotations

from typing import NoReturn

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
