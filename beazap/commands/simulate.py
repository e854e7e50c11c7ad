"""``beazap simulate``: generate Evolution API traffic with a ground truth, post it or land it in bronze."""

from __future__ import annotations

from datetime import date, datetime
from pathlib import Path
from typing import Any

import typer

from beazap.commands.common import console, fail, setup


def _parse_date(value: str) -> date:
    try:
        return datetime.strptime(value, "%Y-%m-%d").date()
    except ValueError:
        raise typer.BadParameter(f"expected YYYY-MM-DD, got {value!r}") from None


def register(app: typer.Typer) -> None:
    """Add this module's commands to ``app``."""

    @app.command("simulate")
    def simulate_cmd(
        instances: int = typer.Option(2, min=1, help="Simulated Evolution instances."),
        days: int = typer.Option(3, min=1, help="Simulated days of traffic."),
        seed: int = typer.Option(42, help="Random seed: the same seed gives byte-identical traffic."),
        start: str = typer.Option("2026-03-02", help="First simulated day (YYYY-MM-DD, instance time zone)."),
        conversations_per_day: float = typer.Option(30.0, min=0, help="New conversations per instance per weekday."),
        out_dir: Path | None = typer.Option(
            None, help="Write ground_truth.json (and instances.json with the webhook tokens) here."
        ),
        post: str | None = typer.Option(None, help="Post the webhooks to this receiver base URL (http://host:port)."),
        bronze: bool = typer.Option(False, "--bronze", help="Write straight into the lake's bronze tables."),
        bulk_events: int | None = typer.Option(
            None, help="Bulk mode: stream about this many events into bronze day by day (no ground truth)."
        ),
        concurrency: int = typer.Option(16, min=1, help="Concurrent HTTP posts with --post."),
        workers: int = typer.Option(1, min=1, help="Bulk mode: processes building and writing days in parallel."),
        register_instances: bool = typer.Option(
            True, help="With --post/--bronze: register the instances and tokens in the operational store."
        ),
        live: bool = typer.Option(
            False,
            "--live",
            help="With --post: play a window starting now at real pace, webhooks and attendants' actions "
            "(through the /v1 API) each at its time, so the live queue moves.",
        ),
        minutes: float = typer.Option(2.0, min=0.05, help="With --live: length of the live window."),
        rate: float = typer.Option(
            1.0, min=0.01, help="With --live: how many times faster than life customers and attendants act."
        ),
        api_token: list[str] = typer.Option(
            [],
            envvar="BEAZAP_API_TOKEN",
            help="With --live: API token (admin or agent) acting for the attendants; one per account.",
        ),
    ) -> None:
        """Generate realistic Evolution API v2 webhooks (with duplicates, out-of-order and late deliveries)
        for N instances over D days, plus a ground-truth file of what the metrics must come out to."""
        setup()
        if post and bronze:
            fail("choose one of --post and --bronze")
        if live and not post:
            fail("--live needs --post URL (the running BeaZap to play against)")
        if live and bulk_events is not None:
            fail("choose one of --live and --bulk-events")
        first_day = _parse_date(start)
        import time

        from beazap.simulator import SimulationConfig

        window = None
        if live:
            from beazap.simulator.live import live_window

            window = live_window(minutes * 60, lead=5.0)
        cfg = SimulationConfig(
            seed=seed,
            instances=instances,
            days=days,
            start=first_day,
            conversations_per_day=conversations_per_day,
            window=window,
            pace=rate if live else 1.0,
        )
        if bulk_events is not None:
            _bulk(cfg, bulk_events, register_instances, workers)
            return
        from beazap.simulator import simulate

        span = f"a {minutes:g}-minute live window" if live else f"{days} day(s)"
        started = time.perf_counter()
        with console.status("simulating…"):
            sim = simulate(cfg)
        console.print(
            f"simulated {len(sim.deliveries):,} deliveries, {len(sim.ops_events):,} ops actions, "
            f"{len(sim.ground_truth.conversations):,} conversations for {instances} instance(s) over {span} "
            f"in {time.perf_counter() - started:.1f} s"
        )
        if out_dir is not None and not live:
            _write_truth(sim, out_dir)
        if (post or bronze) and register_instances:
            from beazap.simulator import register_instances as register
            from storage import migrate
            from storage.db import get_engine

            engine = get_engine()
            migrate.upgrade(engine)
            registered = register(engine, sim)
            console.print(f"registered {len(sim.instances)} instance(s) in the operational store")
            if registered["token_conflicts"]:
                names = ", ".join(registered["token_conflicts"])
                message = (
                    f"instance(s) {names} already registered with another webhook token; "
                    "their token was kept (no implicit rotation)"
                )
                if post:
                    fail(f"{message}: posting would be refused — use another seed's fresh names or rotate explicitly")
                console.print(f"[yellow]{message}[/yellow]")
        if post and live:
            _live(post, sim, concurrency, api_token, out_dir)
        elif post:
            _post(post, sim, concurrency)
        elif bronze:
            from beazap.simulator import write_bronze
            from storage.lake import Lake

            lake = Lake.from_settings()
            with console.status("writing bronze…"):
                result = write_bronze(lake, sim)
            console.print(
                f"bronze: {result['webhook_events']:,} webhook events, {result['ops_events']:,} ops events "
                f"in {result['commits']} commit(s) at {lake.root}"
            )
        _summary(sim.events_per_type())

    def _write_truth(sim: Any, out_dir: Path) -> None:
        import json

        truth = sim.ground_truth.to_json(out_dir / "ground_truth.json")
        (out_dir / "instances.json").write_text(
            json.dumps(
                [
                    {"id": i.id, "account_id": i.account_id, "timezone": i.timezone, "token": i.token}
                    for i in sim.instances
                ],
                indent=2,
            )
        )
        console.print(f"ground truth: {truth}")

    def _live(url: str, sim: Any, concurrency: int, tokens: list[str], out_dir: Path | None) -> None:
        from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeRemainingColumn

        from beazap.simulator.live import LiveError, apply_outcomes, planned_actions, replay

        total = len(sim.deliveries) + len(planned_actions(sim))
        window = sim.config.window
        console.print(
            f"live window of {(window[1] - window[0]) / 60:.1f} min from now at {sim.config.pace:g}x pace: "
            f"{len(sim.deliveries):,} webhooks and {len(planned_actions(sim)):,} attendant actions (Ctrl-C stops)"
        )
        columns = (TextColumn("live"), BarColumn(), MofNCompleteColumn(), TimeRemainingColumn())
        with Progress(*columns, console=console) as progress:
            task = progress.add_task("live", total=total)
            try:
                report = replay(url, sim, tokens, concurrency=concurrency, progress=lambda n: progress.advance(task, n))
            except LiveError as exc:
                fail(str(exc))
        done = report.summary()
        console.print(
            f"posted {done['posted']:,}: accepted {done['accepted']:,}, statuses {done['statuses']}; actions "
            f"done {done['actions_done']:,}, refused {done['actions_refused']:,}, not found "
            f"{done['actions_missing']:,}, 409 conflicts re-read {done['conflicts']:,}"
        )
        if report.stopped:
            fail("stopped before the window ended: no ground truth written (the run is incomplete)", code=130)
        apply_outcomes(sim, report.outcomes)
        if out_dir is not None:
            _write_truth(sim, out_dir)
        if done["failed"]:
            fail(f"{done['failed']:,} deliveries were not accepted")

    def _post(url: str, sim: object, concurrency: int) -> None:
        from rich.progress import Progress

        from beazap.simulator import post_deliveries

        deliveries = sim.deliveries  # type: ignore[attr-defined]
        with Progress(console=console) as progress:
            task = progress.add_task("posting", total=len(deliveries))
            try:
                report = post_deliveries(
                    url, sim, concurrency=concurrency, progress=lambda n: progress.advance(task, n)
                )  # type: ignore[arg-type]
            except Exception as exc:  # connection refused and the like
                fail(f"posting to {url} failed: {exc}")
        console.print(f"posted {report['posted']:,}: accepted {report['accepted']:,}, statuses {report['statuses']}")
        if report["failed"]:
            fail(f"{report['failed']:,} deliveries were not accepted")

    def _bulk(cfg: object, target: int, register_instances: bool, workers: int) -> None:
        from beazap.simulator.bulk import write_bronze_bulk
        from storage.lake import Lake

        lake = Lake.from_settings()
        with console.status(f"streaming ~{target:,} events into bronze…"):
            result = write_bronze_bulk(lake, cfg, target_events=target, workers=workers)  # type: ignore[arg-type]
        if register_instances:
            from beazap.simulator.bulk import register_bulk_instances
            from storage import migrate
            from storage.db import get_engine

            engine = get_engine()
            migrate.upgrade(engine)
            register_bulk_instances(engine, cfg)  # type: ignore[arg-type]
        console.print(
            f"bronze: {result['webhook_events']:,} webhook events and {result['ops_events']:,} ops events in "
            f"{result['seconds']:.1f} s ({result['events_per_second']:,.0f} events/s, {result['commits']} commits)"
        )
        _summary(result["events_per_type"])

    def _summary(counts: dict[str, int]) -> None:
        from rich.table import Table

        table = Table("event", "deliveries", title="events per type")
        for event, n in counts.items():
            table.add_row(event, f"{n:,}")
        table.add_row("[bold]total", f"[bold]{sum(counts.values()):,}")
        console.print(table)
