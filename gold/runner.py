"""Build gold: run the ``gold/*.sql`` files with DuckDB over silver and write each result as Delta.

The SQL files are the definitions (one per table, header comment naming the docs/metrics.md section);
this module only wires them: it registers silver tables and the per-instance configuration
(``gold.config``), runs the work steps and the gold tables in dependency order, and writes each
``gold/<name>`` Delta table in one commit. Gold is a pure function of silver + configuration + the
as-of instant, so a rebuild is idempotent.

Every table has a local-day column (``DAY_COLUMNS``: the calendar day in the instance's time
zone). The computation always covers all of silver (a simulated year costs ~70 CPU-seconds, see
benchmarks/RESULTS.md); what is *replaced* can be limited to some days (``build_gold(days=…)``, a
Delta predicate overwrite — the Dagster daily partitions), and ``refresh_changed`` adds every
other day whose stored rows differ (late data). A rebuild never replaces the days silver no longer
holds, so gold aggregates outlive silver retention (``keep_before``).
"""

from __future__ import annotations

import time
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from string import Template
from typing import Any

import duckdb
import pyarrow as pa
from deltalake.exceptions import SchemaMismatchError

from core.logging import get_logger
from core.settings import Settings, get_settings
from gold.config import config_tables, load_attendants, load_configs
from gold.stats import install as install_macros
from silver import schema as silver_schema
from silver.state import SilverState
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
    "contact_days",
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
        "reaction_count",
        "sender_attendant_id",
    ),
}


# Gold tables written from one shared SQL shape: table -> (template file, its ``$name`` parameters).
# ``people_daily.sql`` is the per-person daily table, grouped by attendant or by team.
TEMPLATES: dict[str, tuple[str, dict[str, str]]] = {
    "attendant_daily": (
        "people_daily",
        {
            "table": "attendant_daily",
            "message_key": "attendant_id",
            "conversation_key": "assignee_id",
            "first_response_key": "first_responder_id",
            "key_columns": "coalesce(k, 'unattributed') as attendant_id, coalesce(max(team_id), 'none') as team_id",
            "key": "attendant_id",
        },
    ),
    "team_daily": (
        "people_daily",
        {
            "table": "team_daily",
            "message_key": "team_id",
            "conversation_key": "team_id",
            "first_response_key": "first_responder_team_id",
            "key_columns": "coalesce(k, 'none') as team_id",
            "key": "team_id",
        },
    ),
}


def sql_text(name: str) -> str:
    """The SQL of one step or gold table (``gold/<name>.sql``, or its shared template filled in)."""
    if name in TEMPLATES:
        template, params = TEMPLATES[name]
        return Template((SQL_DIR / f"{template}.sql").read_text(encoding="utf-8")).substitute(params)
    return (SQL_DIR / f"{name}.sql").read_text(encoding="utf-8")


def silver_as_of(lake: Lake) -> datetime:
    """The as-of instant of silver's last run (its cursor), else now (no silver yet)."""
    return SilverState.load(lake).as_of or datetime.now(UTC)


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
        source: Any = lake.dataset(table, dt) if dt is not None else arrow_schema.empty_table()
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
    configs = load_configs(engine, instance_ids)
    for name, table in {**config_tables(configs), "attendants": load_attendants(engine)}.items():
        con.register(f"__cfg_{name}", table)
        con.execute(f'create or replace table cfg."{name}" as select * from "__cfg_{name}"')
    as_of = as_of or silver_as_of(lake)
    con.execute("create or replace table cfg.params as select ?::timestamptz as as_of", [as_of])
    con.execute(
        "create or replace table work.versions as "
        "select v.instance_id, v.version_id, v.effective_from, "
        "timezone(i.timezone, v.effective_from::timestamp) as from_utc "
        "from cfg.versions v join cfg.instances i using (instance_id) order by instance_id, from_utc"
    )
    install_macros(con)
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


# Each gold table's local-day column (the instance time zone's calendar day a row belongs to): the
# unit of partial rebuilds (Dagster daily partitions) and of what a full rebuild keeps.
DAY_COLUMNS: dict[str, str] = {table: "day" for table in GOLD_TABLES} | {
    "reply_waits": "opened_day",
    "conversation_facts": "opened_day",
}
SILVER_AGED_TABLES = ("silver/messages", "silver/conversations", "silver/calls")
# Files of a few MB, written in day order: replacing some days rewrites only the files holding them
# (a one-file table would be rewritten whole for a single day).
TARGET_FILE_BYTES = 8 * 1024 * 1024

Days = tuple[date | None, date | None]
"""Local calendar days ``(first, last)``, both included; ``None`` leaves that end open."""


def silver_starts(con: duckdb.DuckDBPyConnection) -> dict[str, tuple[date, datetime]]:
    """Per instance: the first local day (its zone) and the first instant silver holds."""
    rows = con.execute(
        """
        with t as (
            select instance_id, event_at as ts from silver.messages
            union all select instance_id, opened_at from silver.conversations
            union all select instance_id, offered_at from silver.calls
        )
        select t.instance_id, min(timezone(i.timezone, t.ts)::date), min(t.ts)
        from t join cfg.instances i using (instance_id) where t.ts is not null group by t.instance_id
        """
    ).fetchall()
    return {r[0]: (r[1], r[2]) for r in rows}


def keep_before(starts: dict[str, tuple[date, datetime]], as_of: datetime, settings: Settings) -> dict[str, date]:
    """Per instance, the first local day silver can rebuild; gold rows before it are always kept.

    Silver retention drops whole UTC months, so once an instance's first silver month is at or past
    the retention cutoff its first local day is partial (the rest of it was in the dropped month)
    and is kept too; before that (a young lake) silver is complete and its first day is rebuilt.
    Instances silver no longer holds at all are absent: all their gold rows are kept.
    """
    keep = min(settings.retention_table_days.get(t, settings.retention_silver_days) for t in SILVER_AGED_TABLES)
    cutoff = as_of - timedelta(days=keep)
    out: dict[str, date] = {}
    for instance_id, (first_day, first_at) in starts.items():
        aged = (first_at.year, first_at.month) <= (cutoff.year, cutoff.month)
        out[instance_id] = first_day + timedelta(days=1) if aged else first_day
    return out


def _literal(value: date | str) -> str:
    text = value.isoformat() if isinstance(value, date) else value
    return "'" + text.replace("'", "''") + "'"


def day_predicate(column: str, first: date | None, last: date | None, extra: list[date] | tuple[date, ...] = ()) -> str:
    """SQL (DuckDB and Delta) selecting rows whose ``column`` lies in ``[first, last]`` or in ``extra``."""
    bounds = [f'"{column}" >= {_literal(first)}' if first else "", f'"{column}" <= {_literal(last)}' if last else ""]
    in_range = " and ".join(b for b in bounds if b) or "true"
    if not extra:
        return in_range
    listed = f'"{column}" in ({", ".join(_literal(d) for d in sorted(extra))})'
    return f"({in_range}) or {listed}"


def rebuildable(column: str, keep: dict[str, date]) -> str:
    """SQL selecting the rows silver can rebuild: each instance's days from its :func:`keep_before` day."""
    groups: dict[date, list[str]] = {}
    for instance_id, first in sorted(keep.items()):
        groups.setdefault(first, []).append(instance_id)
    clauses = [
        f'("{column}" >= {_literal(first)} and "instance_id" in ({", ".join(_literal(i) for i in ids)}))'
        for first, ids in sorted(groups.items())
    ]
    return "(" + " or ".join(clauses) + ")" if clauses else "false"


def changed_days(con: duckdb.DuckDBPyConnection, lake: Lake, table: str, *, scope: str, skip: str) -> list[date]:
    """Days of rows in ``scope`` but outside ``skip`` (SQL) whose stored gold differs from ``gold.<table>``.

    Compares each day's row count and an order-free sum of row hashes; stored rows are cast to the
    computed column types first, so a Delta round trip alone never counts as a change.
    """
    column = DAY_COLUMNS[table]
    where = f"({scope}) and not ({skip})"
    computed_days = f'select "{column}" as d from gold.{table} where {where}'
    dt = lake.open_or_none(f"gold/{table}")
    if dt is None:
        return sorted({r[0] for r in con.execute(computed_days).fetchall()} - {None})
    con.register("__stored", lake.dataset(f"gold/{table}", dt))
    con.execute(f"create or replace temp table __stored_rows as select * from gold.{table} limit 0")
    try:
        try:
            con.execute(f"insert into __stored_rows select * from __stored where {where}")
        except duckdb.Error:  # the SQL changed the columns: every day differs
            rows = con.execute(f'{computed_days} union select "{column}" from __stored where {where}').fetchall()
            return sorted({r[0] for r in rows} - {None})
        digest = 'select "{c}" as d, count(*) as n, sum(hash(x)::hugeint) as h from {t} x where {w} group by 1'
        rows = con.execute(
            f"""
            select coalesce(a.d, b.d) from ({digest.format(c=column, t=f"gold.{table}", w=where)}) a
            full join ({digest.format(c=column, t="__stored_rows", w=where)}) b on a.d = b.d
            where a.n is distinct from b.n or a.h is distinct from b.h
            """
        ).fetchall()
        return sorted({r[0] for r in rows} - {None})
    finally:
        con.unregister("__stored")
        con.execute("drop table if exists __stored_rows")


def write_days(con: duckdb.DuckDBPyConnection, lake: Lake, table: str, where: str) -> int:
    """Replace the rows of ``gold/<table>`` matching ``where`` by those of ``gold.<table>``; returns rows written.

    One Delta commit: a predicate overwrite (rows outside ``where`` stay as they are), or — on the
    first write or when the SQL changed the table's columns — an overwrite of the whole table that
    carries the untouched rows over (schema evolution). Rows are written in day order in files of
    ``TARGET_FILE_BYTES``, so a later predicate on a few days prunes the files of every other day by
    their statistics and rewrites only the few that hold them.
    """
    column = DAY_COLUMNS[table]
    data: pa.Table = con.sql(f'select * from gold.{table} where {where} order by "{column}"').to_arrow_table()
    target = f"gold/{table}"
    dt = lake.open_or_none(target)
    if dt is None:
        lake.write(target, data, mode="overwrite", schema_mode="overwrite", target_file_size=TARGET_FILE_BYTES)
        return data.num_rows
    try:
        lake.write(target, data, mode="overwrite", predicate=where, target_file_size=TARGET_FILE_BYTES)
    except SchemaMismatchError:
        con.register("__new", data)
        con.register("__stored", lake.dataset(target, dt))
        names = ", ".join(f'"{n}"' for n in data.schema.names)
        merged = con.sql(
            f"select {names} from (select * from __new union all by name select * from __stored where not ({where}))"
        ).to_arrow_table()
        con.unregister("__new")
        con.unregister("__stored")
        merged = merged.cast(data.schema)
        lake.write(target, merged, mode="overwrite", schema_mode="overwrite", target_file_size=TARGET_FILE_BYTES)
    return data.num_rows


def build_gold(
    lake: Lake,
    *,
    engine: Any | None = None,
    settings: Settings | None = None,
    as_of: datetime | None = None,
    tables: tuple[str, ...] = GOLD_TABLES,
    days: Days | None = None,
    refresh_changed: bool = False,
) -> dict[str, dict]:
    """Recompute every gold table from silver and replace the requested local days under ``gold/``.

    ``engine`` (the ops store) supplies each instance's time zone, business hours and SLA policy;
    without it the defaults apply. ``as_of`` is the instant running clocks are measured to (by
    default silver's as-of, :func:`silver_as_of`, so gold's clocks and silver's closings
    agree). ``days`` (``(first, last)``: local calendar days, each instance in its own zone;
    ``None`` leaves an end open) limits what is replaced; by default every day silver covers is.
    Once a table exists, days silver no longer holds (see :func:`keep_before`) are never replaced,
    so gold aggregates outlive silver retention. ``refresh_changed`` also replaces every other day
    whose stored rows differ from the recomputation (late data, clocks still running): gold then
    equals a full rebuild. Returns ``{table: {"rows": written, "days": n, "late_days": [iso…], "version": v,
    "seconds": s, "as_of": iso}}``.
    """
    settings = settings or get_settings()
    started = time.perf_counter()
    as_of = as_of or silver_as_of(lake)
    con = prepare(lake, engine=engine, settings=settings, as_of=as_of)
    try:
        timings = compute(con)
        keep = keep_before(silver_starts(con), as_of, settings)
        first, last = days or (None, None)
        stats: dict[str, dict] = {}
        for table in tables:
            t0 = time.perf_counter()
            column = DAY_COLUMNS[table]
            # A table's first write takes every computed day; later ones never touch the kept days.
            scope = rebuildable(column, keep) if lake.exists(f"gold/{table}") else "true"
            in_range = day_predicate(column, first, last)
            late = changed_days(con, lake, table, scope=scope, skip=in_range) if refresh_changed else []
            where = f"({day_predicate(column, first, last, late)}) and {scope}"
            rows = write_days(con, lake, table, where)
            written = con.execute(f'select count(distinct "{column}") from gold.{table} where {where}').fetchall()[0]
            stats[table] = {
                "rows": rows,
                "days": int(written[0]) if written else 0,
                "late_days": [d.isoformat() for d in late],
                "version": lake.version(f"gold/{table}"),
                "seconds": round(timings[table] + time.perf_counter() - t0, 3),
                "as_of": as_of.isoformat(),  # the instant running clocks were measured to
            }
    finally:
        con.close()
    log.info("gold built", tables=len(stats), as_of=as_of.isoformat(), seconds=round(time.perf_counter() - started, 2))
    return stats
