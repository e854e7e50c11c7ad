"""``beazap worker`` (the live projector loop) and ``beazap ops …`` (operational store maintenance)."""

from __future__ import annotations

import signal
import time
from datetime import timedelta

import typer

from beazap.commands.common import console, fail, setup
from core.utc import as_utc

ops_app = typer.Typer(
    help="Operational store maintenance (partitions, action extraction, projector).", no_args_is_help=True
)


def worker(
    once: bool = typer.Option(False, "--once", help="Apply what is in bronze now and exit."),
    extract_every: float = typer.Option(
        10.0, help="Seconds between extractions of the store's actions to bronze/ops_events (0 = never)."
    ),
    auto_assign: bool = typer.Option(True, help="Route new conversations of instances with routing.auto_assign."),
) -> None:
    """Keep the operational store live from bronze (projector), route new conversations and extract
    the store's actions to the lake, and raise SLA alerts. A database outage pauses it; it resumes from
    its cursor."""
    setup()
    from sqlalchemy.exc import OperationalError

    import live.routing  # noqa: F401 - registers the `llm` router so new conversations queue routing jobs at once
    from core.settings import get_settings
    from live.alerts import tick as sla_alerts_tick
    from live.assignment import auto_assign as route_new
    from live.extract import extract_actions
    from live.projector import PROJECTOR_LEASE, Projector, run_forever
    from storage.db import get_engine
    from storage.lake import Lake
    from storage.leases import Lease, current

    engine = get_engine()
    lake = Lake.from_settings()
    hook = (lambda ids: route_new(engine, ids)) if auto_assign else None
    if once:
        lease = Lease(engine, PROJECTOR_LEASE, ttl=timedelta(seconds=get_settings().projector_lease_seconds))
        try:
            if not lease.acquire():
                held = current(engine, PROJECTOR_LEASE)
                fail(
                    f"another worker holds the projector lease ({held.holder if held else '?'}, "
                    f"until {held.expires_at:%Y-%m-%d %H:%M:%S} UTC); stop it or let it run"
                    if held
                    else "another worker holds the projector lease"
                )
            try:
                projector = Projector(lake, engine, lease=lease)
                projector.on_new_conversations = hook
                applied = projector.run_once()
            finally:
                lease.release()
            extracted = extract_actions(engine, lake) if extract_every else 0
        except OperationalError as exc:
            fail(f"cannot reach the operational database: {exc.orig}")
        console.print(f"applied {applied} bronze rows/actions; extracted {extracted} actions")
        return

    stopping = {"flag": False}

    def _stop(*_args: object) -> None:
        stopping["flag"] = True

    signal.signal(signal.SIGTERM, _stop)
    signal.signal(signal.SIGINT, _stop)
    last = {"t": 0.0}

    def _extract() -> None:
        if extract_every and time.monotonic() - last["t"] >= extract_every:
            extract_actions(engine, lake)
            last["t"] = time.monotonic()
        sla_alerts_tick(engine)

    console.print("worker running (Ctrl-C to stop); a second worker waits as a standby for the projector lease")
    run_forever(lake, engine, stop=lambda: stopping["flag"], on_new_conversations=hook, after_step=_extract)


@ops_app.command("maintain-partitions")
def maintain_partitions(
    months_ahead: int = typer.Option(3, help="Create monthly partitions this many months ahead."),
    live_window_days: int | None = typer.Option(None, help="Drop months past this window (default: settings)."),
) -> None:
    """Create future monthly partitions of `messages` and drop those past the live window (PostgreSQL);
    on SQLite delete messages past the window."""
    setup()
    from core.settings import get_settings
    from storage.db import get_engine
    from storage.partitions import maintain

    window = live_window_days if live_window_days is not None else get_settings().live_window_days
    report = maintain(get_engine(), months_ahead=months_ahead, live_window_days=window)
    console.print(
        f"created: {', '.join(report.created) or '-'}; dropped: {', '.join(report.dropped) or '-'}; "
        f"rows deleted: {report.deleted_rows}"
    )


@ops_app.command("extract")
def extract() -> None:
    """Append the store's new actions to bronze/ops_events (idempotent)."""
    setup()
    from live.extract import extract_actions
    from storage.db import get_engine
    from storage.lake import Lake

    console.print(f"extracted {extract_actions(get_engine(), Lake.from_settings())} actions")


@ops_app.command("queue")
def queue(limit: int = typer.Option(20, help="Rows to show.")) -> None:
    """Show the live queue: open conversations without a first response, oldest first."""
    setup()
    from datetime import UTC, datetime

    from rich.table import Table
    from sqlalchemy import select

    from storage.db import get_engine
    from storage.tables import conversations as c

    now = datetime.now(UTC)
    with get_engine().connect() as conn:
        rows = conn.execute(
            select(c.c.instance_id, c.c.id, c.c.opened_at, c.c.assignee_id, c.c.inbound_count)
            .where(c.c.status == "open", c.c.first_response_at.is_(None), c.c.origin == "inbound")
            .order_by(c.c.opened_at)
            .limit(limit)
        ).all()
    table = Table(title="Live queue: waiting for a first response")
    for col in ("instance", "conversation", "waiting", "assignee", "msgs"):
        table.add_column(col)
    for r in rows:
        opened = as_utc(r.opened_at)
        table.add_row(r.instance_id, r.id, str(now - opened).split(".")[0], r.assignee_id or "-", str(r.inbound_count))
    console.print(table)


def register(app: typer.Typer) -> None:
    """Add ``beazap worker`` and ``beazap ops …``."""
    app.command("worker")(worker)
    app.add_typer(ops_app, name="ops")
