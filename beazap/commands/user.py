"""``beazap user …``: people who log in to the web dashboard (admin, supervisor or attendant)."""

from __future__ import annotations

import sys

import typer

from beazap.commands.common import console, fail, setup

user_app = typer.Typer(help="Dashboard users (log in at /app).", no_args_is_help=True)


def _engine():
    from storage import migrate
    from storage.db import get_engine

    engine = get_engine()
    migrate.upgrade(engine)
    return engine


@user_app.command("add")
def add(
    email: str = typer.Argument(..., help="The user's e-mail (their login)."),
    role: str = typer.Option(..., help="admin, supervisor or attendant."),
    account: str = typer.Option("default", help="Tenant (account) the user belongs to."),
    attendant: str | None = typer.Option(None, help="Attendant id an attendant user maps to."),
    password_stdin: bool = typer.Option(False, "--password-stdin", help="Read the password from standard input."),
) -> None:
    """Create a user; the password is asked for (or read from stdin) and stored as an argon2 hash."""
    setup()
    from storage.users import UserError, create_user

    if password_stdin:
        password = sys.stdin.readline().rstrip("\r\n")
    else:
        password = typer.prompt("Password", hide_input=True, confirmation_prompt=True)
    try:
        user = create_user(_engine(), email, password, role, account, attendant_id=attendant)
    except UserError as exc:
        fail(str(exc))
    console.print(f"{user.role} [bold]{user.email}[/] added to account [bold]{user.account_id}[/] (log in at /app)")


@user_app.command("list")
def list_(account: str = typer.Option("default", help="Tenant (account).")) -> None:
    """The account's active users."""
    setup()
    from storage.users import list_users

    for user in list_users(_engine(), account):
        print(f"{user.email}\t{user.role}\t{user.attendant_id or '-'}")


@user_app.command("remove")
def remove(email: str, account: str = typer.Option("default", help="Tenant (account).")) -> None:
    """Deactivate a user and end their sessions."""
    setup()
    from storage.users import deactivate_user, list_users

    engine = _engine()
    found = [u for u in list_users(engine, account) if u.email == email.strip().lower()]
    if not found or not deactivate_user(engine, account, found[0].id):
        fail(f"no active user {email} in account {account}")
    console.print(f"{email} removed")


def register(app: typer.Typer) -> None:
    app.add_typer(user_app, name="user")
