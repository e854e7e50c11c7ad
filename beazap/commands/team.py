"""``beazap team …``: an instance's teams (create, list, update, delete), validated as the API does
(``api.routes.ops_people``)."""

from __future__ import annotations

import typer

from beazap.commands.common import console, operator_scope, ops_engine, repo_errors, setup

team_app = typer.Typer(help="Teams of an instance.", no_args_is_help=True)


@team_app.command("create")
def create(
    instance: str = typer.Argument(..., help="Instance the team belongs to."),
    name: str = typer.Argument(..., help="Team name."),
    team_id: str | None = typer.Option(None, "--id", help="Team id (generated when omitted)."),
) -> None:
    """Create a team and print its id."""
    setup()
    from api.routes.ops_people import TeamIn
    from storage import ops_repo

    engine = ops_engine()
    with repo_errors():
        body = TeamIn.model_validate({"instance_id": instance, "name": name, "id": team_id})
        team = ops_repo.create_team(engine, operator_scope(engine, instance), instance, body.name, body.id)
    console.print(f"team [bold]{team['name']}[/] created in {instance}")
    print(team["id"])


@team_app.command("list")
def list_teams(instance: str | None = typer.Option(None, help="Only this instance's teams.")) -> None:
    """List teams (id, instance, name)."""
    setup()
    from storage import ops_repo

    engine = ops_engine()
    with repo_errors():
        teams = ops_repo.list_teams(engine, operator_scope(engine, instance), instance)
    for team in teams:
        console.print(f"{team['id']}\tinstance={team['instance_id']}\t{team['name']}")


@team_app.command("update")
def update(
    team_id: str = typer.Argument(..., help="Team id."),
    name: str = typer.Option(..., help="New name."),
) -> None:
    """Rename a team."""
    setup()
    from api.routes.ops_people import TeamPatch
    from storage import ops_repo

    engine = ops_engine()
    with repo_errors():
        fields = TeamPatch.model_validate({"name": name}).model_dump(exclude_unset=True)
        team = ops_repo.update_team(engine, operator_scope(engine), team_id, fields)
    console.print(f"team {team['id']} is now [bold]{team['name']}[/]")


@team_app.command("delete")
def delete(team_id: str = typer.Argument(..., help="Team id.")) -> None:
    """Delete a team (its attendants stay, without a team)."""
    setup()
    from storage import ops_repo

    engine = ops_engine()
    with repo_errors():
        ops_repo.delete_team(engine, operator_scope(engine), team_id)
    console.print(f"team {team_id} deleted")


def register(app: typer.Typer) -> None:
    app.add_typer(team_app, name="team")
