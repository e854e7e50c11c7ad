"""Retention: rows past each table's retention leave bronze, silver and the ops store; gold stays."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import duckdb
import sqlalchemy as sa
from typer.testing import CliRunner

from core.settings import Settings
from governance import retention
from storage.instances import add_instance
from storage.lake import Lake
from storage.maintenance import read_table
from tests import governance_data as gd

NOW = datetime.now(UTC).replace(microsecond=0)
OLD_DAYS = 800  # past the 24-month default


def _build(lake: Lake, engine: sa.Engine) -> None:
    from gold.runner import build_gold
    from live.projector import run_once
    from silver.pipeline import build_silver

    for instance, account in gd.INSTANCES.items():
        add_instance(engine, instance, account)
    gd.build(now=NOW, old_days=OLD_DAYS).write(lake)
    build_silver(lake)
    run_once(lake, engine)
    build_gold(lake, engine=engine)


def _split(lake: Lake, table: str, column: str, cutoff: Any) -> tuple[int, int]:
    con = duckdb.connect()
    con.register("t", read_table(lake, table))
    old, recent = con.execute(
        f"select count(*) filter (where {column} < ?), count(*) filter (where {column} >= ?) from t", [cutoff, cutoff]
    ).fetchone()
    return int(old), int(recent)


def _store_split(engine: sa.Engine, table: str, column: str, cutoff: datetime) -> tuple[int, int]:
    with engine.connect() as conn:
        old = conn.execute(sa.text(f'select count(*) from {table} where "{column}" < :c'), {"c": cutoff}).scalar_one()
        recent = conn.execute(
            sa.text(f'select count(*) from {table} where "{column}" >= :c'), {"c": cutoff}
        ).scalar_one()
    return int(old), int(recent)


def test_retention_dry_run_then_apply(lake: Lake, engine: sa.Engine, lake_dir: Path, settings: Settings) -> None:
    _build(lake, engine)
    bronze_cutoff = (NOW - timedelta(days=730)).date()
    month_cutoff = f"{NOW - timedelta(days=730):%Y-%m}"
    live_cutoff = NOW - timedelta(days=90)
    bronze_before = _split(lake, "bronze/webhook_events", "received_date", bronze_cutoff)
    silver_before = _split(lake, "silver/messages", "event_month", month_cutoff)
    ops_msgs_before = _store_split(engine, "messages", "timestamp", live_cutoff)
    gold_before = _split(lake, "gold/daily_volume", "day", bronze_cutoff)
    assert bronze_before[0] > 0 and bronze_before[1] > 0
    assert silver_before[0] > 0 and ops_msgs_before[0] > 0 and gold_before[0] > 0

    plan = retention.run(lake, engine, dry_run=True, settings=settings, now=NOW)
    planned = {i.target: i.rows for i in plan.items}
    assert planned["bronze/webhook_events"] == bronze_before[0]
    assert planned["silver/messages"] == silver_before[0]
    assert planned["ops:messages"] == ops_msgs_before[0]
    assert planned["ops:conversations"] > 0
    assert not any(t.startswith("gold/") for t in planned)  # gold aggregates are kept
    # A dry run deletes nothing.
    assert _split(lake, "bronze/webhook_events", "received_date", bronze_cutoff) == bronze_before
    assert _store_split(engine, "messages", "timestamp", live_cutoff) == ops_msgs_before

    done = retention.run(lake, engine, dry_run=False, settings=settings, now=NOW, vacuum_now=True)
    assert done.total_rows >= plan.total_rows - planned["ops:messages"]
    assert _split(lake, "bronze/webhook_events", "received_date", bronze_cutoff) == (0, bronze_before[1])
    assert _split(lake, "silver/messages", "event_month", month_cutoff) == (0, silver_before[1])
    assert _split(lake, "gold/daily_volume", "day", bronze_cutoff) == gold_before
    assert _store_split(engine, "messages", "timestamp", live_cutoff) == (0, ops_msgs_before[1])
    with engine.connect() as conn:
        stale = conn.execute(
            sa.text("select count(*) from conversations where status <> 'open' and last_message_at < :c"),
            {"c": live_cutoff},
        ).scalar_one()
        recent_convs = conn.execute(
            sa.text("select count(*) from conversations where last_message_at >= :c"), {"c": live_cutoff}
        ).scalar_one()
    assert stale == 0 and recent_convs > 0
    # vacuum_now: the old partition's files are physically gone.
    old_dir = lake_dir / "bronze" / "webhook_events" / f"received_date={(NOW - timedelta(days=OLD_DAYS)).date()}"
    assert not list(old_dir.glob("*.parquet"))
    # A second run finds nothing more.
    again = retention.run(lake, engine, dry_run=True, settings=settings, now=NOW)
    assert again.total_rows == 0


def test_per_table_override_and_gold_retention(lake: Lake, engine: sa.Engine, settings: Settings) -> None:
    _build(lake, engine)
    custom = settings.model_copy(update={"retention_table_days": {"silver/messages": 1}, "retention_gold_days": 30})
    plan = {i.target: i for i in retention.run(lake, None, dry_run=True, settings=custom, now=NOW).items}
    assert plan["silver/messages"].keep_days == 1
    assert (
        plan["silver/messages"].rows
        == _split(lake, "silver/messages", "event_month", f"{NOW - timedelta(days=1):%Y-%m}")[0]
    )
    assert plan["gold/daily_volume"].keep_days == 30 and plan["gold/daily_volume"].rows > 0
    assert plan["bronze/webhook_events"].keep_days == 730


def test_retention_cli_dry_run(settings: Settings) -> None:
    from beazap.cli import app

    result = CliRunner().invoke(app, ["retention", "apply", "--dry-run", "--json"])
    assert result.exit_code == 0, result.output
    report = json.loads(result.output[result.output.index("{") :])
    assert report["dry_run"] is True and report["total_rows"] == 0
    assert {i["target"] for i in report["items"]} >= {"ops:messages", "ops:conversations"}
