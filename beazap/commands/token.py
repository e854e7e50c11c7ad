"""``beazap token …``: tenant API tokens for the metrics and operational APIs."""

from __future__ import annotations

import typer

from beazap.commands.common import console, fail, setup

token_app = typer.Typer(help="API tokens (bearer) for tenants.", no_args_is_help=True)


@token_app.command("create")
def create(
    account: str = typer.Option("default", help="Tenant (account) the token belongs to."),
    scope: str = typer.Option("admin", help="admin, agent or read-only."),
    name: str = typer.Option("cli", help="A label for the token."),
) -> None:
    """Create an API token and print it (shown once; stored hashed)."""
    setup()
    from storage import migrate
    from storage.db import get_engine
    from storage.tokens import SCOPES, create_token

    if scope not in SCOPES:
        fail(f"scope must be one of {', '.join(SCOPES)}")
    engine = get_engine()
    migrate.upgrade(engine)
    token = create_token(engine, account, scope, name)
    console.print(f"{scope} token for account [bold]{account}[/] (use as `Authorization: Bearer …`):")
    print(token)


def register(app: typer.Typer) -> None:
    app.add_typer(token_app, name="token")
