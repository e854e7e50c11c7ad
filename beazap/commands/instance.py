"""``beazap instance …``: register Evolution API instances and their webhook tokens."""

from __future__ import annotations

import typer

from beazap.commands.common import console, fail, setup

instance_app = typer.Typer(help="Evolution API instances that may post webhooks.", no_args_is_help=True)


@instance_app.command("add")
def add(
    name: str = typer.Argument(..., help="Evolution instance name (the `instance` field of webhooks)."),
    account: str = typer.Option("default", help="Tenant (account) that owns the instance."),
    token: str | None = typer.Option(None, help="Webhook token to use; a random one is generated if omitted."),
    jwt_secret: str | None = typer.Option(None, help="HS256 secret when Evolution posts with `jwt_key`."),
    timezone: str = typer.Option("America/Sao_Paulo", help="IANA time zone for days/hours buckets."),
) -> None:
    """Register an instance and print its webhook token (shown once; stored hashed)."""
    setup()
    from sqlalchemy.exc import IntegrityError

    from storage import migrate
    from storage.db import get_engine
    from storage.instances import add_instance

    engine = get_engine()
    migrate.upgrade(engine)
    try:
        issued = add_instance(engine, name, account, token=token, jwt_secret=jwt_secret, timezone=timezone)
    except IntegrityError:
        fail(f"instance {name!r} already exists")
    console.print(f"instance [bold]{name}[/] registered for account [bold]{account}[/]")
    console.print("webhook token (configure it as the `apikey` header of the Evolution webhook):")
    print(issued)


@instance_app.command("list")
def list_instances() -> None:
    """List registered instances (no secrets)."""
    setup()
    from sqlalchemy import select

    from storage import migrate
    from storage.db import get_engine
    from storage.tables import instances

    engine = get_engine()
    migrate.upgrade(engine)
    with engine.connect() as conn:
        rows = conn.execute(select(instances.c.id, instances.c.account_id, instances.c.timezone)).all()
    for row in rows:
        console.print(f"{row.id}\taccount={row.account_id}\ttz={row.timezone}")


def register(app: typer.Typer) -> None:
    app.add_typer(instance_app, name="instance")
