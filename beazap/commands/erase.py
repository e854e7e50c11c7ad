"""``beazap erase --phone +55…``: LGPD erasure of one contact, and ``--verify`` to prove it."""

from __future__ import annotations

import json

import typer

from beazap.commands.common import console, fail, setup


def erase(
    phone: str = typer.Option(..., "--phone", help="The contact's phone (any format; +55… recommended)."),
    verify: bool = typer.Option(False, "--verify", help="Only check that nothing of the contact remains."),
    dry_run: bool = typer.Option(False, "--dry-run", help="Count what would be erased, change nothing."),
    requested_by: str = typer.Option("cli", "--requested-by", help="Who asked (kept in the audit record)."),
    yes: bool = typer.Option(False, "--yes", "-y", help="Do not ask for confirmation."),
) -> None:
    """Erase (irreversibly anonymize) one contact in bronze, silver, gold and the operational store."""
    setup()
    from governance import erasure
    from governance.subject import phone_variants
    from storage import migrate
    from storage.db import get_engine
    from storage.lake import Lake

    try:
        phone_variants(phone)
    except ValueError:
        fail("not a valid phone number")
    engine = get_engine()
    migrate.upgrade(engine)
    lake = Lake.from_settings()
    if verify:
        report = erasure.verify_erasure(lake, engine, phone)
        print(json.dumps(report.as_dict(), indent=2))
        if not report.clean:
            fail("the contact still appears (see the list above)", code=2)
        console.print("[green]verified:[/] nothing of this contact remains in the lake files or the ops store")
        return
    if not dry_run and not yes:
        typer.confirm("Erase this contact everywhere? This cannot be undone", abort=True)
    try:
        result = erasure.erase_contact(lake, engine, phone, requested_by=requested_by, dry_run=dry_run)
    except Exception as exc:
        fail(f"erasure failed: {exc}")
    print(json.dumps(result.as_dict(), indent=2))


def register(app: typer.Typer) -> None:
    app.command("erase")(erase)
