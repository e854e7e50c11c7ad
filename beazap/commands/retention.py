"""``beazap retention apply [--dry-run]``: delete data past each table's retention (lake + ops store)."""

from __future__ import annotations

import json

import typer

from beazap.commands.common import console, fail, setup

retention_app = typer.Typer(help="Data retention (bronze/silver 24 months, live store 90 days).", no_args_is_help=True)


@retention_app.command("apply")
def apply(
    dry_run: bool = typer.Option(False, "--dry-run", help="Only show what would be deleted."),
    vacuum_now: bool = typer.Option(
        False, "--vacuum-now", help="Delete the files at once (no time travel) instead of at the next vacuum."
    ),
    as_json: bool = typer.Option(False, "--json", help="Print the report as JSON."),
) -> None:
    """Delete (or with --dry-run, count) rows older than each table's retention."""
    setup()
    from rich.table import Table

    from governance import retention
    from storage import migrate
    from storage.db import get_engine
    from storage.lake import Lake

    try:
        engine = get_engine()
        migrate.upgrade(engine)
        report = retention.run(Lake.from_settings(), engine, dry_run=dry_run, vacuum_now=vacuum_now)
    except Exception as exc:  # clear message, exit ≠ 0
        fail(f"retention failed: {exc}")
    if as_json:
        print(json.dumps(report.as_dict(), indent=2))
        return
    table = Table(title="retention (dry run: nothing deleted)" if dry_run else "retention applied")
    for column in ("target", "keep days", "cutoff", "rows", "detail"):
        table.add_column(column)
    for item in report.items:
        table.add_row(item.target, str(item.keep_days), (item.cutoff or "")[:19], str(item.rows), item.detail)
    console.print(table)
    console.print(f"{'would delete' if dry_run else 'deleted'} {report.total_rows} rows")


def register(app: typer.Typer) -> None:
    app.add_typer(retention_app, name="retention")
