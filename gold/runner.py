"""Build gold: run the ``gold/*.sql`` files with DuckDB over silver and write each result as Delta.

The SQL files are the definitions (one per table, header comment naming the METRICS.md section);
this module only wires them: it registers silver tables and the per-instance configuration
(``gold.config``), runs the work steps and the gold tables in dependency order, and overwrites each
``gold/<name>`` Delta table in one commit. Gold is a pure function of silver + configuration + the
as-of instant, so a rebuild is idempotent. Gold is always rebuilt in full: a simulated year (10M
messages) costs ~70 CPU-seconds (see benchmarks/RESULTS.md); per-day incremental rebuilds are not
implemented.
"""

from __future__ import annotations

import time
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import duckdb
import pyarrow as pa

from beazap.logging import get_logger
from beazap.settings import Settings, get_settings
from gold.config import config_tables, load_attendants, load_configs
from silver import schema as silver_schema
from storage.lake import Lake

log = get_logger(__name__)
SQL_DIR = Path(__file__).resolve().parent

# Intermediate steps (DuckDB tables in schema ``work``, not written to the lake).
WORK_STEPS = (
    "business_calendar",
    "ops_state",
    "attendant_teams",
    "messages_enriched",
    "conversation_clocks",
    "reply_waits_base",
    "clock_points",
)
WORK_TABLE_NAMES = {"ops_state": "chat_assignee"}
# Gold tables, in dependency order; each is written to ``gold/<name>``.
GOLD_TABLES = (
    "reply_waits",
    "conversation_facts",
    "daily_volume",
    "hourly_volume",
    "daily_conversations",
    "heatmap",
    "sla_daily",
    "attendant_daily",
    "team_daily",
    "calls_daily",
)

SILVER_INPUTS = {
    "messages": (silver_schema.MESSAGES, silver_schema.MESSAGES_SCHEMA),
    "conversations": (silver_schema.CONVERSATIONS, silver_schema.CONVERSATIONS_SCHEMA),
    "calls": (silver_schema.CALLS, silver_schema.CALLS_SCHEMA),
    "ops_events": (silver_schema.OPS_EVENTS, silver_schema.OPS_EVENTS_SCHEMA),
}

SILVER_COLUMNS = {
    "messages": (
        "instance_id",
        "message_id",
        "conversation_id",
        "contact_key",
        "chat_jid",
        "chat_type",
        "direction",
        "kind",
        "event_at",
        "automated",
        "revoked",
        "edited",
        "sender_attendant_id",
    ),
}

DURATION_BUCKET_MACRO = """
create or replace macro duration_bucket(s) as
    case when s is null then null
         when s < 60 then '<1m' when s < 300 then '1-5m' when s < 900 then '5-15m'
         when s < 1800 then '15-30m' when s < 3600 then '30-60m' when s < 14400 then '1-4h'
         when s < 86400 then '4-24h' else '>24h' end
"""
BUCKETS = ("<1m", "1-5m", "5-15m", "15-30m", "30-60m", "1-4h", "4-24h", ">24h")


def sql_text(name: str) -> str:
    """The SQL of one step or gold table (``gold/<name>.sql``)."""
    return (SQL_DIR / f"{name}.sql").read_text(encoding="utf-8")


def prepare(
    lake: Lake,
    *,
    engine: Any | None = None,
    settings: Settings | None = None,
    as_of: datetime | None = None,
    threads: int | None = None,
) -> duckdb.DuckDBPyConnection:
    """A DuckDB connection with ``silver.*`` inputs, ``cfg.*`` configuration and the macros."""
    settings = settings or get_settings()
    con = duckdb.connect(":memory:")
    con.execute("set TimeZone = 'UTC'")
    con.execute("set preserve_insertion_order = false")  # the big tables need no row order (faster, less memory)
    if threads:
        con.execute(f"set threads = {int(threads)}")
    for schema in ("silver", "cfg", "work", "gold"):
        con.execute(f"create schema if not exists {schema}")
    for name, (table, arrow_schema) in SILVER_INPUTS.items():
        dt = lake.open_or_none(table)
        source: Any = dt.to_pyarrow_dataset() if dt is not None else arrow_schema.empty_table()
        con.register(f"__silver_{name}", source)
        # Materialized (only the columns gold reads): DuckDB joins native tables far faster than
        # Arrow datasets (an ASOF join against a dataset view re-scans it).
        columns = ", ".join(f'"{c}"' for c in SILVER_COLUMNS.get(name, arrow_schema.names))
        con.execute(f'create or replace table silver."{name}" as select {columns} from "__silver_{name}"')
        con.unregister(f"__silver_{name}")
    instance_ids = [
        r[0]
        for r in con.execute(
            "select instance_id from silver.conversations union select instance_id from silver.messages "
            "union select instance_id from silver.calls"
        ).fetchall()
        if r[0] is not None
    ]
    configs = load_configs(engine, instance_ids, settings.default_timezone)
    for name, table in {**config_tables(configs), "attendants": load_attendants(engine)}.items():
        con.register(f"__cfg_{name}", table)
        con.execute(f'create or replace table cfg."{name}" as select * from "__cfg_{name}"')
    as_of = as_of or datetime.now(UTC)
    con.execute("create or replace table cfg.params as select ?::timestamptz as as_of", [as_of])
    con.execute(
        "create or replace table work.versions as "
        "select v.instance_id, v.version_id, v.effective_from, "
        "timezone(i.timezone, v.effective_from::timestamp) as from_utc "
        "from cfg.versions v join cfg.instances i using (instance_id) order by instance_id, from_utc"
    )
    con.execute(DURATION_BUCKET_MACRO)
    return con


def compute(con: duckdb.DuckDBPyConnection) -> dict[str, float]:
    """Run every work step and gold table inside ``con``; returns seconds per step."""
    timings: dict[str, float] = {}
    for step in WORK_STEPS:
        started = time.perf_counter()
        name = WORK_TABLE_NAMES.get(step, step)
        con.execute(f"create or replace table work.{name} as {sql_text(step)}")
        timings[step] = time.perf_counter() - started
    for table in GOLD_TABLES:
        started = time.perf_counter()
        con.execute(f"create or replace table gold.{table} as {sql_text(table)}")
        timings[table] = time.perf_counter() - started
    return timings


def build_gold(
    lake: Lake,
    *,
    engine: Any | None = None,
    settings: Settings | None = None,
    as_of: datetime | None = None,
    tables: tuple[str, ...] = GOLD_TABLES,
) -> dict[str, dict]:
    """Recompute every gold table from silver and overwrite it under ``gold/``.

    ``engine`` (the ops store) supplies each instance's time zone, business hours and SLA policy;
    without it the defaults apply. ``as_of`` is the instant running clocks are measured to (now by
    default). Returns ``{table: {"rows": n, "version": v, "seconds": s}}``.
    """
    settings = settings or get_settings()
    started = time.perf_counter()
    con = prepare(lake, engine=engine, settings=settings, as_of=as_of)
    try:
        timings = compute(con)
        stats: dict[str, dict] = {}
        for table in tables:
            t0 = time.perf_counter()
            data: pa.Table = con.sql(f"select * from gold.{table}").to_arrow_table()
            lake.write(f"gold/{table}", data, mode="overwrite", schema_mode="overwrite")
            stats[table] = {
                "rows": data.num_rows,
                "version": lake.version(f"gold/{table}"),
                "seconds": round(timings[table] + time.perf_counter() - t0, 3),
            }
    finally:
        con.close()
    log.info("gold built", tables=len(stats), seconds=round(time.perf_counter() - started, 2))
    return stats
