"""``beazap instance …``: register Evolution API instances and configure them (time zone, business
hours, holidays, SLA targets, Evolution URL and key, routing) through the same validation as the API
(``core.instance_config`` and ``PATCH /v1/instances/{id}``)."""

from __future__ import annotations

import json
import sys
from datetime import date
from typing import Any

import typer

from beazap.commands.common import console, fail, operator_scope, ops_engine, repo_errors, setup

instance_app = typer.Typer(help="Evolution API instances: registration and configuration.", no_args_is_help=True)


@instance_app.command("add")
def add(
    name: str = typer.Argument(..., help="Evolution instance name (the `instance` field of webhooks)."),
    account: str = typer.Option("default", help="Tenant (account) that owns the instance."),
    token: str | None = typer.Option(None, help="Webhook token to use; a random one is generated if omitted."),
    jwt_secret: str | None = typer.Option(None, help="HS256 secret when Evolution posts with `jwt_key`."),
    timezone: str | None = typer.Option(None, help="IANA time zone (default: BEAZAP_DEFAULT_TIMEZONE)."),
) -> None:
    """Register an instance and print its webhook token (shown once; stored hashed)."""
    setup()
    from sqlalchemy.exc import IntegrityError

    from storage.instances import add_instance

    engine = ops_engine()
    with repo_errors():
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

    from storage.tables import instances

    engine = ops_engine()
    with engine.connect() as conn:
        rows = conn.execute(select(instances.c.id, instances.c.account_id, instances.c.timezone)).all()
    for row in rows:
        console.print(f"{row.id}\taccount={row.account_id}\ttz={row.timezone}")


def _json_option(value: str | None, option: str) -> Any:
    if value is None:
        return None
    try:
        return json.loads(value)
    except json.JSONDecodeError as exc:
        fail(f"{option}: not valid JSON ({exc.msg} at position {exc.pos})")


@instance_app.command("set")
def set_config(
    name: str = typer.Argument(..., help="Instance name."),
    timezone: str | None = typer.Option(None, help="IANA time zone, e.g. America/Manaus."),
    hours: list[str] = typer.Option(
        [], "--hours", help="Weekly hours, repeatable: 'mon-fri 08:00-18:00', 'sat 08:00-12:00', 'sun closed'."
    ),
    effective_from: str | None = typer.Option(
        None, help="With --hours: the local day the schedule starts (default: replaces the base schedule)."
    ),
    holiday: list[str] = typer.Option([], "--holiday", help="Add a holiday (YYYY-MM-DD), repeatable."),
    no_holiday: list[str] = typer.Option([], "--no-holiday", help="Remove a holiday, repeatable."),
    sla: list[str] = typer.Option(
        [], "--sla", help="Target, repeatable: first_response=30m:business, resolution=24h:calendar (m|h|d)."
    ),
    no_sla: list[str] = typer.Option([], "--no-sla", help="Stop measuring a clock (first_response, …)."),
    at_risk_ratio: float | None = typer.Option(None, help="Share of a target after which a clock is at risk."),
    display_name: str | None = typer.Option(None, help="Name shown to people."),
    evolution_url: str | None = typer.Option(None, help="Evolution API base URL of the instance."),
    evolution_key: str | None = typer.Option(
        None, help="Evolution API key, stored encrypted; '-' reads it from stdin (keeps it out of shell history)."
    ),
    evolution_uuid: str | None = typer.Option(None, help="Evolution's instance UUID."),
    routing: str | None = typer.Option(None, help="Routing JSON, e.g. '{\"auto_assign\": true}' (merged)."),
    active: bool | None = typer.Option(None, "--active/--inactive", help="Accept webhooks or not."),
) -> None:
    """Change an instance's configuration; what is not given keeps its value (like ``PATCH``)."""
    setup()
    from api.routes.ops_instances import InstanceFields
    from core import instance_config
    from storage import ops_repo

    if evolution_key == "-":
        evolution_key = sys.stdin.readline().strip() or fail("--evolution-key -: nothing on stdin")
    engine = ops_engine()
    scope = operator_scope(engine, name)
    patch: dict[str, Any] = {}
    with repo_errors():
        current = ops_repo.get_instance(engine, scope, name)
        if timezone is not None:
            patch["timezone"] = timezone
        business: dict[str, Any] = {}
        if hours:
            business["weekly"] = instance_config.parse_hours(hours)
            if effective_from:
                business["effective_from"] = _day(effective_from, "--effective-from")
        elif effective_from:
            fail("--effective-from needs --hours")
        if holiday or no_holiday:
            stored = instance_config.load(name, None, current["business_hours"], None).business_hours.holidays
            days = {*stored, *(_day(d, "--holiday") for d in holiday)} - {_day(d, "--no-holiday") for d in no_holiday}
            business["holidays"] = [d.isoformat() for d in sorted(days)]
        if business:
            patch["business_hours"] = business
        policy: dict[str, Any] = {}
        for spec in sla:
            clock, target = instance_config.parse_sla(spec)
            policy[clock] = target
        for clock in no_sla:
            if clock not in instance_config.CLOCKS:
                fail(f"--no-sla {clock!r}: use one of {', '.join(instance_config.CLOCKS)}")
            policy[clock] = None
        if at_risk_ratio is not None:
            policy["at_risk_ratio"] = at_risk_ratio
        if policy:
            patch["sla_policy"] = policy
        extra = {
            "display_name": display_name,
            "evolution_base_url": evolution_url,
            "evolution_api_key": evolution_key,
            "evolution_instance_uuid": evolution_uuid,
            "routing": instance_config.merge_patch(current["routing"] or {}, _json_option(routing, "--routing"))
            if routing is not None
            else None,
            "active": active,
        }
        patch.update({k: v for k, v in extra.items() if v is not None})
        if not patch:
            fail("nothing to change: pass at least one option (see `beazap instance set --help`)")
        fields = InstanceFields.model_validate(patch).model_dump(exclude_unset=True)
        ops_repo.update_instance(engine, scope, name, fields)
    console.print(f"instance [bold]{name}[/] updated")
    _show(name, as_json=False)


def _day(value: str, option: str) -> date:
    try:
        return date.fromisoformat(value)
    except ValueError:
        fail(f"{option} {value!r}: expected a date YYYY-MM-DD")


def _minutes(minutes: float) -> str:
    if minutes % 1440 == 0:
        return f"{minutes / 1440:g} d"
    if minutes % 60 == 0:
        return f"{minutes / 60:g} h"
    return f"{minutes:g} min"


def _show(name: str, *, as_json: bool) -> None:
    from core import instance_config
    from storage import ops_repo

    engine = ops_engine()
    scope = operator_scope(engine, name)
    with repo_errors():
        inst = ops_repo.get_instance(engine, scope, name)
    config = instance_config.load(name, inst["timezone"], inst["business_hours"], inst["sla_policy"])
    if as_json:
        out = {**inst, "effective": config.model_dump(mode="json")}
        print(json.dumps(out, default=str, indent=2))
        return
    console.print(f"[bold]{inst['id']}[/]  account={inst['account_id']}  active={inst['active']}")
    console.print(f"  display name     {inst['display_name']}")
    console.print(f"  evolution        {inst['evolution_base_url'] or '-'}  key set: {inst['evolution_api_key_set']}")
    console.print(f"  time zone        {config.timezone}")
    for version in config.business_hours.versions:
        since = "always" if version.effective_from == instance_config.EPOCH else f"from {version.effective_from}"
        console.print(f"  business hours   ({since})")
        for day in instance_config.WEEKDAYS:
            spans = version.weekly.get(day) or []
            console.print(f"    {day}  {', '.join(f'{a}-{b}' for a, b in spans) or 'closed'}")
    holidays = ", ".join(d.isoformat() for d in config.business_hours.holidays) or "none"
    console.print(f"  holidays         {holidays}")
    stored = inst["sla_policy"] or {}
    for clock in instance_config.CLOCKS:
        target = getattr(config.sla_policy, clock)
        origin = "" if clock in stored else "  (default)"
        text = "not measured" if target is None else f"{_minutes(target.minutes)} {target.basis}"
        console.print(f"  SLA {clock:<14} {text}{origin}")
    console.print(f"  at-risk share    {config.sla_policy.at_risk_ratio:g}")
    if inst["routing"]:
        console.print(f"  routing          {json.dumps(inst['routing'])}")


@instance_app.command("show")
def show(
    name: str = typer.Argument(..., help="Instance name."),
    as_json: bool = typer.Option(False, "--json", help="Machine-readable output (stored and effective values)."),
) -> None:
    """Show an instance's configuration, defaults filled in (no secrets)."""
    setup()
    _show(name, as_json=as_json)


def register(app: typer.Typer) -> None:
    app.add_typer(instance_app, name="instance")
