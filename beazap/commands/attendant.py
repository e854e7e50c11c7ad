"""``beazap attendant …``: an instance's attendants with their team and capacity (create, list,
update, deactivate), validated as the API does (``api.routes.ops_people``)."""

from __future__ import annotations

from typing import Any

import typer

from beazap.commands.common import console, fail, operator_scope, ops_engine, repo_errors, setup

attendant_app = typer.Typer(help="Attendants of an instance (team, capacity, availability).", no_args_is_help=True)


@attendant_app.command("create")
def create(
    instance: str = typer.Argument(..., help="Instance the attendant works on."),
    name: str = typer.Argument(..., help="Attendant name."),
    attendant_id: str | None = typer.Option(None, "--id", help="Attendant id (generated when omitted)."),
    team: str | None = typer.Option(None, help="Team id."),
    capacity: int = typer.Option(5, help="Open conversations the attendant may hold at once."),
    email: str | None = typer.Option(None, help="E-mail address."),
) -> None:
    """Create an attendant and print their id."""
    setup()
    from api.routes.ops_people import AttendantIn
    from storage import ops_repo

    engine = ops_engine()
    with repo_errors():
        body = AttendantIn.model_validate(
            {
                "instance_id": instance,
                "name": name,
                "id": attendant_id,
                "team_id": team,
                "capacity": capacity,
                "email": email,
            }
        )
        fields = body.model_dump(exclude={"instance_id"})
        attendant = ops_repo.create_attendant(engine, operator_scope(engine, instance), instance, fields)
    console.print(f"attendant [bold]{attendant['name']}[/] created in {instance}")
    print(attendant["id"])


@attendant_app.command("list")
def list_attendants(
    instance: str | None = typer.Option(None, help="Only this instance's attendants."),
    team: str | None = typer.Option(None, help="Only this team's attendants."),
) -> None:
    """List attendants with team, capacity and current load."""
    setup()
    from storage import ops_repo

    engine = ops_engine()
    with repo_errors():
        rows = ops_repo.list_attendants(engine, operator_scope(engine, instance), instance, team)
    for a in rows:
        console.print(
            f"{a['id']}\tinstance={a['instance_id']}\tteam={a['team_id'] or '-'}\tcapacity={a['capacity']}"
            f"\topen={a['open_conversations']}\tavailable={a['available']}\tactive={a['active']}\t{a['name']}"
        )


@attendant_app.command("update")
def update(
    attendant_id: str = typer.Argument(..., help="Attendant id."),
    name: str | None = typer.Option(None, help="New name."),
    team: str | None = typer.Option(None, help="Move to this team id."),
    no_team: bool = typer.Option(False, "--no-team", help="Leave their team."),
    capacity: int | None = typer.Option(None, help="Open conversations they may hold at once."),
    email: str | None = typer.Option(None, help="E-mail address."),
    available: bool | None = typer.Option(None, "--available/--unavailable", help="Take new conversations or not."),
    active: bool | None = typer.Option(None, "--active/--inactive", help="Reactivate or deactivate."),
) -> None:
    """Change an attendant; what is not given keeps its value."""
    setup()
    from api.routes.ops_people import AttendantPatch
    from storage import ops_repo

    if team and no_team:
        fail("--team and --no-team exclude each other")
    given: dict[str, Any] = {
        "name": name,
        "team_id": team,
        "capacity": capacity,
        "email": email,
        "available": available,
        "active": active,
    }
    patch = {k: v for k, v in given.items() if v is not None}
    if no_team:
        patch["team_id"] = None
    if not patch:
        fail("nothing to change: pass at least one option (see `beazap attendant update --help`)")
    engine = ops_engine()
    with repo_errors():
        fields = AttendantPatch.model_validate(patch).model_dump(exclude_unset=True)
        a = ops_repo.update_attendant(engine, operator_scope(engine), attendant_id, fields)
    console.print(f"attendant {a['id']}: team={a['team_id'] or '-'} capacity={a['capacity']} active={a['active']}")


def register(app: typer.Typer) -> None:
    app.add_typer(attendant_app, name="attendant")
