"""``beazap build silver|gold|all [--from DAY --to DAY]``: the pipeline without Dagster (cron, a shell).

Runs the same steps as the Dagster assets (:mod:`orchestration.steps`): silver applies every new
bronze version; gold recomputes from silver and replaces the local days ``--from``…``--to`` (both
optional; without ``--to`` the end stays open and older days whose rows changed are replaced too,
like the automation's latest partition). A rich progress bar shows each step.
"""

from __future__ import annotations

from datetime import date
from enum import StrEnum
from typing import Any

import typer

from beazap.commands.common import console, fail, setup

NO_BRONZE = (
    "nothing to build: the lake at {root} has no bronze data yet. Receive webhooks with `beazap serve` "
    "(Evolution API posting to /webhooks/evolution) or load sample data with `beazap simulate --bronze` "
    "or `beazap demo`, "
    "then run `beazap build all`."
)
NO_SILVER = "silver has not been built yet: run `beazap build silver` first (or `beazap build all`)."


class Target(StrEnum):
    silver = "silver"
    gold = "gold"
    all = "all"


def parse_day(value: str | None, flag: str) -> date | None:
    """``YYYY-MM-DD`` or ``None``; anything else is a clear error (exit 2)."""
    if value is None:
        return None
    try:
        return date.fromisoformat(value)
    except ValueError:
        fail(f"{flag} {value!r} is not a day: use YYYY-MM-DD (e.g. 2026-03-08)", code=2)


def _has_bronze(lake: Any) -> bool:
    from bronze.schema import OPS_EVENTS, WEBHOOK_EVENTS

    return lake.exists(WEBHOOK_EVENTS) or lake.exists(OPS_EVENTS)


def _has_silver(lake: Any) -> bool:
    from silver.schema import CONVERSATIONS, MESSAGES

    return lake.exists(MESSAGES) and lake.exists(CONVERSATIONS)


def _summary(layer: str, stats: dict[str, dict]) -> str:
    tables = {k: v for k, v in stats.items() if not k.startswith("_")}
    rows = sum(int(v.get("rows_written", v.get("rows", 0)) or 0) for v in tables.values())
    return f"{layer}: {len(tables)} tables, {rows} rows written"


def register(app: typer.Typer) -> None:
    @app.command("build")
    def build(
        target: Target = typer.Argument(..., help="silver, gold or all (silver then gold)."),
        from_day: str | None = typer.Option(None, "--from", help="First local day gold replaces (YYYY-MM-DD)."),
        to_day: str | None = typer.Option(None, "--to", help="Last local day gold replaces (default: open end)."),
    ) -> None:
        """Build silver and/or gold from the lake, as the Dagster assets do (no Dagster needed)."""
        setup()
        first, last = parse_day(from_day, "--from"), parse_day(to_day, "--to")
        if first and last and first > last:
            fail(f"--from {first} is after --to {last}", code=2)
        if target is Target.silver and (first or last):
            fail("--from/--to choose gold days; silver always applies every new bronze version", code=2)

        from rich.progress import BarColumn, Progress, SpinnerColumn, TextColumn, TimeElapsedColumn

        from core.settings import get_settings
        from orchestration import steps
        from storage.lake import Lake

        settings = get_settings()
        lake = Lake.from_settings(settings)
        if target in (Target.silver, Target.all) and not _has_bronze(lake):
            fail(NO_BRONZE.format(root=lake.root))
        if target is Target.gold and not _has_silver(lake):
            fail(NO_SILVER if _has_bronze(lake) else NO_BRONZE.format(root=lake.root))

        def gold() -> dict[str, dict]:
            from storage import migrate
            from storage.db import get_engine

            engine = get_engine(settings)
            migrate.upgrade(engine)
            return steps.run_gold(lake, engine, settings, first, last, refresh=last is None)

        work = []
        if target in (Target.silver, Target.all):
            work.append(("silver", lambda: steps.run_silver(lake, settings)))
        if target in (Target.gold, Target.all):
            work.append(("gold", gold))
        days = f" (days {first or '…'} to {last or 'open end'})" if first or last else ""
        done: list[str] = []
        with Progress(
            SpinnerColumn(),
            TextColumn("{task.description}"),
            BarColumn(),
            TextColumn("{task.completed}/{task.total} steps"),
            TimeElapsedColumn(),
            console=console,
        ) as progress:
            task = progress.add_task(f"building {target.value}{days}", total=len(work))
            for layer, step in work:
                progress.update(task, description=f"building {layer}{days if layer == 'gold' else ''}")
                try:
                    stats = step()
                except Exception as exc:  # a clear message and exit ≠ 0, never a traceback
                    fail(f"{layer} build failed: {str(exc).splitlines()[0] if str(exc) else type(exc).__name__}")
                done.append(_summary(layer, stats))
                progress.advance(task)
        for line in done:
            console.print(line)
