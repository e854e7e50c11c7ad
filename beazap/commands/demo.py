"""``beazap demo``: the whole pipeline end to end on the embedded defaults, with a summary.

Simulated Evolution traffic is posted over real HTTP to the receiver, lands in bronze, is normalized
into silver, aggregated into gold, projected into the live operational store, and checked against
the simulator's ground truth. Everything lives under one folder (``.beazap/demo`` by default), wiped
at the start so the demo is repeatable.
"""

from __future__ import annotations

import os
import shutil
import socket
import threading
import time
from contextlib import contextmanager
from datetime import date, timedelta
from pathlib import Path
from typing import Any

import typer

from beazap.commands.common import console, fail, setup


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@contextmanager
def _receiver(port: int) -> Any:
    """Run the real FastAPI app with uvicorn in a background thread on loopback."""
    import httpx
    import uvicorn

    from api.app import create_app

    server = uvicorn.Server(uvicorn.Config(create_app(), host="127.0.0.1", port=port, log_level="warning"))
    thread = threading.Thread(target=server.run, name="beazap-demo-receiver", daemon=True)
    thread.start()
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        try:
            if httpx.get(f"http://127.0.0.1:{port}/healthz", timeout=1).status_code == 200:
                break
        except httpx.HTTPError:
            pass
        if not thread.is_alive():
            fail("the receiver did not start")
        time.sleep(0.05)  # polling for readiness, bounded by the deadline
    else:
        fail("the receiver did not become healthy within 30 s")
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        server.should_exit = True
        thread.join(timeout=30)


DEMO_START = date(2026, 3, 2)
DEMO_PASSWORD = "beazap-demo"  # noqa: S105 - a demo-only login, printed at the end of the demo


def _print_dashboard(engine: Any, sim: Any, days: int) -> None:
    """Create the demo's dashboard users (an admin and a supervisor) and print the URL and the login."""
    from storage.users import create_user

    account = sim.instances[0].account_id
    logins = {"admin": "admin@demo.beazap", "supervisor": "supervisor@demo.beazap"}
    for role, email in logins.items():
        create_user(engine, email, DEMO_PASSWORD, role, account)
    end = DEMO_START + timedelta(days=days - 1)
    console.print(
        f"Dashboard: [bold]uv run beazap serve[/] (with the exports below), then open "
        f"[bold]http://127.0.0.1:8000/app?from={DEMO_START}&to={end}[/]\n"
        "Live queue: [bold]http://127.0.0.1:8000/app/queue[/]\n"
        f"Log in as [bold]{logins['admin']}[/] (admin) or [bold]{logins['supervisor']}[/] (supervisor), "
        f"password [bold]{DEMO_PASSWORD}[/] (demo only)."
    )


def _step(title: str) -> None:
    console.rule(f"[bold]{title}")


def run_demo(home: Path, instances: int, days: int, seed: int, live_seconds: float = 0.0) -> None:
    """Run every stage; raises on failure. Separated from the CLI for tests."""
    from core.settings import get_settings

    if home.exists():
        shutil.rmtree(home)
    home.mkdir(parents=True)
    os.environ["BEAZAP_LAKE_URI"] = str(home / "lake")
    os.environ["BEAZAP_DATABASE_URL"] = f"sqlite:///{home / 'beazap.db'}"
    os.environ.setdefault("BEAZAP_SECRET_KEY_FILE", str(home / "secret.key"))
    get_settings.cache_clear()
    settings = get_settings()

    from beazap.simulator import SimulationConfig, post_deliveries, register_instances, simulate
    from beazap.simulator.sinks import append_ops, ensure_bronze
    from storage import migrate
    from storage.db import get_engine
    from storage.lake import Lake

    lake = Lake.from_settings(settings)
    engine = get_engine(settings)
    migrate.upgrade(engine)

    _step("1. Simulating Evolution API traffic")
    sim = simulate(SimulationConfig(seed=seed, instances=instances, days=days, start=DEMO_START))
    register_instances(engine, sim)
    truth_path = home / "ground_truth.json"
    sim.ground_truth.to_json(truth_path)
    console.print(
        f"{len(sim.deliveries):,} webhook deliveries for {instances} instances over {days} days "
        f"(ground truth: {truth_path})"
    )

    _step("2. Posting them to the receiver over HTTP")
    with _receiver(_free_port()) as base_url:
        started = time.perf_counter()
        with console.status(f"posting {len(sim.deliveries):,} webhooks (a minute or two)…"):
            report = post_deliveries(base_url, sim, concurrency=64)
        elapsed = time.perf_counter() - started
    console.print(
        f"posted {report['posted']:,} webhooks in {elapsed:.1f} s ({report['posted'] / elapsed:,.0f}/s): "
        f"{report['accepted']:,} accepted, {report['failed']:,} failed {report['statuses']}"
    )
    # Assignments and resolutions come from the operational action log; the simulator's attendants
    # "acted" in the past, so their actions land in bronze/ops_events as an imported log.
    ensure_bronze(lake)
    append_ops(lake, sim.ops_events)
    console.print(f"{len(sim.ops_events):,} attendant actions (assign/transfer/resolve…) → bronze/ops_events")
    _print_bronze_counts(lake)

    _step("3. Silver: messages, conversations, contacts, groups, calls")
    from silver.pipeline import build_silver

    with console.status("building silver from bronze (about a minute)…"):
        stats = build_silver(lake, settings=settings)
    _print_stats(stats)

    _step("4. Gold: volume, SLA, attendants, teams, calls")
    from gold.runner import build_gold

    with console.status("building gold…"):
        stats = build_gold(lake, engine=engine, settings=settings)
    _print_stats(stats)
    try:
        from llm.insights import build_insights

        _print_stats(build_insights(lake, engine=engine, settings=settings))
    except ImportError:
        console.print("[yellow]LLM insights not available in this build[/]")

    _step("5. Live operational store")
    from live.projector import run_once

    with console.status("projecting bronze into the live operational store (a minute or two)…"):
        applied = run_once(lake, engine)
    console.print(f"projector applied {applied:,} bronze events to the operational store")
    _print_live_queue(engine)

    _step("6. Dashboard (from gold)")
    from gold.dashboard import summary

    console.print(summary(lake))

    _step("7. Check against the simulator's ground truth")
    _print_truth_check(lake, sim)
    _step("8. Web dashboard")
    _print_dashboard(engine, sim, days)
    if live_seconds > 0:
        _step("9. The live queue, moving")
        _live_queue_moving(lake, engine, sim, live_seconds)
    _print_next_steps(home, sorted({inst.account_id for inst in sim.instances}), DEMO_START, days)


LIVE_PACE = 60.0  # customers and attendants act 60x faster than life: a minute shows an hour's work


def _live_queue_moving(lake: Any, engine: Any, sim: Any, seconds: float) -> None:
    """Play a short live window against the receiver while the projector runs: webhooks, and the
    attendants' assign/transfer/resolve through the operational API — the live queue moves."""
    from dataclasses import replace

    from beazap.simulator import simulate
    from beazap.simulator.live import LiveError, live_window, planned_actions, replay, steady_rate
    from live.projector import run_once
    from storage.tokens import create_token, resolve_token, revoke_token

    accounts = sorted({inst.account_id for inst in sim.instances})
    tokens = [create_token(engine, account, "agent", name="demo-live") for account in accounts]
    cfg = replace(
        sim.config,
        business_open_hour=0,  # whatever the hour you run it: attendants at work
        business_close_hour=24,
        saturday_close_hour=24,
        conversations_per_day=steady_rate(0.5, LIVE_PACE, sim.instances[0].timezone),
        pace=LIVE_PACE,
        window=live_window(seconds, lead=3.0),
    )
    live_sim = simulate(cfg)  # same people (seed), new traffic in a window starting now
    stop = threading.Event()

    def project() -> None:  # what `beazap worker` does
        while not stop.is_set():
            run_once(lake, engine)
            stop.wait(0.2)

    console.print(
        f"{seconds:g} s from now at {LIVE_PACE:g}x pace: {len(live_sim.deliveries):,} webhooks and "
        f"{len(planned_actions(live_sim)):,} attendant actions through /v1 (assign, transfer, resolve)"
    )
    _print_live_queue(engine)
    worker = threading.Thread(target=project, name="beazap-demo-projector", daemon=True)
    with _receiver(_free_port()) as base_url:
        worker.start()
        try:
            with console.status("live: posting webhooks and acting as the attendants…"):
                report = replay(base_url, live_sim, tokens, concurrency=16)
        except LiveError as exc:
            fail(str(exc))
        finally:
            stop.set()
            worker.join(timeout=60)
            for token in tokens:  # the demo's tokens end with it
                if (held := resolve_token(engine, token)) is not None:
                    revoke_token(engine, held.token_id)
    run_once(lake, engine)
    done = report.summary()
    console.print(
        f"posted {done['posted']:,} webhooks ({done['accepted']:,} accepted); actions done {done['actions_done']:,}, "
        f"refused {done['actions_refused']:,}, 409 conflicts re-read {done['conflicts']:,}"
    )
    _print_live_queue(engine)
    console.print(
        "Watch it live on the served app: [bold]uv run beazap serve[/] and [bold]uv run beazap worker[/] "
        "(with the exports below), then",
        soft_wrap=True,
        highlight=False,
    )
    console.print(
        f'  BEAZAP_API_TOKEN="$(uv run beazap token create --account {accounts[0]} --scope agent | tail -n 1)" '
        f"uv run beazap simulate --post http://127.0.0.1:8000 --live --minutes 5 --rate {LIVE_PACE:g} "
        f"--conversations-per-day 300 --instances {sum(1 for i in sim.instances if i.account_id == accounts[0])} "
        f"--seed {sim.config.seed}",
        soft_wrap=True,
        highlight=False,
    )


def _print_next_steps(home: Path, accounts: list[str], start: date, days: int) -> None:
    """Copy-pasteable commands that continue on the demo's data (not the default lake)."""
    try:
        where = home.resolve().relative_to(Path.cwd())
    except ValueError:
        where = home.resolve()
    env = (
        f"export BEAZAP_LAKE_URI={where / 'lake'} BEAZAP_DATABASE_URL=sqlite:///{where / 'beazap.db'}"
        f" BEAZAP_SECRET_KEY_FILE={where / 'secret.key'}"
    )
    lines = [
        "",
        "[bold]Next steps[/] (the demo's lake and database are in "
        f"{where}; without the export, commands use the default .beazap/lake):",
        f"  {env}",
        '  uv run beazap sql -c "select instance_id, status, count(*) as n from silver.conversations group by all '
        'order by all"   # query the lake (DuckDB)',
        f"  TOKEN=$(uv run beazap token create --account {accounts[0]} --scope read-only | tail -n 1)"
        "   # a token for the APIs",
        "  uv run beazap serve & until curl -sf http://127.0.0.1:8000/healthz >/dev/null; do sleep 0.5; done"
        "   # APIs: http://127.0.0.1:8000/docs",
        # the API's default period is the last 30 days, which the simulated dates are not in
        f'  curl -H "Authorization: Bearer $TOKEN" "http://127.0.0.1:8000/v1/metrics/overview'
        f'?from={start}&to={start + timedelta(days=days - 1)}"',
        "  make dagster          # Dagster UI, http://127.0.0.1:3000",
        "A worked example, step by step (one instance, your own webhooks): docs/quickstart.md",
    ]
    for line in lines:
        console.print(line, soft_wrap=True, highlight=False)


def _print_bronze_counts(lake: Any) -> None:
    from rich.table import Table

    from storage.duck import connect

    con = connect(lake)
    rows = con.execute(
        "select event, count(*) as n, count(distinct payload_hash) as distinct_payloads "
        "from bronze.webhook_events group by event order by n desc"
    ).fetchall()
    table = Table("event", "landed in bronze", "distinct payloads", title="bronze/webhook_events")
    for event, n, distinct in rows:
        table.add_row(event, f"{n:,}", f"{distinct:,}")
    table.add_row("[bold]total", f"[bold]{sum(r[1] for r in rows):,}", "")
    console.print(table)


_SHOWN_STATS = ("rows_written", "rows_total", "rows", "conversations", "rules", "failed", "rejects")


def _print_stats(stats: dict[str, dict[str, Any]]) -> None:
    """One line per table with its row counts; run-level details (keys starting with ``_``) last."""
    from rich.table import Table

    table = Table("table", "rows")
    for name, values in stats.items():
        if name.startswith("_") or not isinstance(values, dict):
            continue
        table.add_row(name, ", ".join(f"{k}={values[k]:,}" for k in _SHOWN_STATS if k in values))
    console.print(table)
    run = stats.get("_run")
    if isinstance(run, dict):
        console.print(", ".join(f"{k}={v}" for k, v in run.items()))


def _print_live_queue(engine: Any) -> None:
    from rich.table import Table
    from sqlalchemy import text

    with engine.connect() as conn:
        rows = conn.execute(
            text(
                "select instance_id, count(*) as open_total, "
                "sum(case when first_response_at is null then 1 else 0 end) as waiting "
                "from conversations where status = 'open' group by instance_id order by instance_id"
            )
        ).all()
    table = Table("instance", "open conversations", "waiting for first response", title="live queue")
    for row in rows:
        table.add_row(row.instance_id, str(row.open_total), str(row.waiting))
    console.print(table)


def _print_truth_check(lake: Any, sim: Any) -> None:
    from storage.duck import connect

    con = connect(lake)
    got = con.execute(
        "select count(*), count(first_response_at), "
        "count(*) filter (where status = 'resolved'), count(*) filter (where status = 'expired') "
        "from silver.conversations"
    ).fetchone()
    truth = sim.ground_truth.conversations
    want = (
        len(truth),
        sum(1 for c in truth if c.first_response_at is not None),
        sum(1 for c in truth if c.status == "resolved"),
        sum(1 for c in truth if c.status == "expired"),
    )
    labels = ("conversations", "with a first response", "resolved", "expired")
    for label, g, w in zip(labels, got, want, strict=True):
        mark = "[green]✓[/]" if g == w else "[red]✗[/]"
        console.print(f"{mark} {label}: computed {g:,}, ground truth {w:,}")


def register(app: typer.Typer) -> None:
    @app.command("demo")
    def demo(
        home: Path = typer.Option(Path(".beazap/demo"), help="Folder for the demo's lake and database (wiped)."),
        instances: int = typer.Option(3, min=1, help="Simulated Evolution instances."),
        days: int = typer.Option(7, min=1, help="Simulated days of traffic."),
        seed: int = typer.Option(42, help="Random seed (same seed, same traffic)."),
        live_seconds: float = typer.Option(
            30.0, min=0, help="Then play this many seconds of live traffic and actions (0: skip)."
        ),
    ) -> None:
        """Run the whole pipeline on embedded defaults (local lake + SQLite) and print a summary."""
        setup()
        run_demo(home, instances, days, seed, live_seconds)
