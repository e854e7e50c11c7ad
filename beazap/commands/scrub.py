"""``beazap scrub-apikeys``: remove Evolution API keys that earlier versions stored in bronze."""

from __future__ import annotations

import json

import typer

from beazap.commands.common import console, fail, setup


def scrub_apikeys(
    dry_run: bool = typer.Option(False, "--dry-run", help="Count what would be rewritten, change nothing."),
    yes: bool = typer.Option(False, "--yes", "-y", help="Do not ask for confirmation."),
) -> None:
    """Replace every clear `apikey` in bronze (current rows and older files) by its keyed hash."""
    setup()
    from governance.apikey_scrub import scrub_apikeys as run
    from storage import migrate
    from storage.db import get_engine
    from storage.lake import Lake

    lake = Lake.from_settings()
    engine = None
    if not dry_run:
        if not yes:
            typer.confirm(
                "Rewrite bronze rows and delete old files holding API keys? This cannot be undone", abort=True
            )
        engine = get_engine()
        migrate.upgrade(engine)
    try:
        report = run(lake, engine, dry_run=dry_run)
    except Exception as exc:
        fail(f"scrub failed: {type(exc).__name__}: {exc}")
    print(json.dumps(report.as_dict(), indent=2))
    if not dry_run and not report.clean:
        fail("some files still hold an API key (listed above)", code=2)
    if not dry_run:
        console.print("[green]clean:[/] no API key in clear remains in bronze")


def register(app: typer.Typer) -> None:
    app.command("scrub-apikeys")(scrub_apikeys)
