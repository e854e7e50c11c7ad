"""``beazap db …``: operational database migrations."""

from __future__ import annotations

import typer

from beazap.commands.common import console, fail, setup

db_app = typer.Typer(help="Operational database (SQLite by default, PostgreSQL in production).", no_args_is_help=True)


@db_app.command("upgrade")
def upgrade(revision: str = typer.Argument("heads", help="Alembic revision to migrate to.")) -> None:
    """Create or migrate the operational database schema (idempotent)."""
    setup()
    from sqlalchemy.exc import OperationalError

    from storage import migrate
    from storage.db import get_engine

    engine = get_engine()
    try:
        migrate.upgrade(engine, revision)
    except OperationalError as exc:
        fail(f"cannot reach the operational database: {exc.orig}")
    console.print(f"database at [bold]{engine.url.render_as_string(hide_password=True)}[/] is at {revision}")


@db_app.command("check")
def check() -> None:
    """Exit 1 if the database schema and the models have drifted."""
    setup()
    from storage import migrate
    from storage.db import get_engine

    diffs = migrate.drift(get_engine())
    if diffs:
        fail("models and database differ:\n" + "\n".join(map(str, diffs)))
    console.print("schema matches the models")


def register(app: typer.Typer) -> None:
    app.add_typer(db_app, name="db")
