"""Data-quality measurements behind the Dagster asset checks (plain functions, no Dagster).

Each function reads the lake (and, for reconciliation, the ops store) and returns a small result
with ``passed`` and the numbers the UI shows. Thresholds come from settings.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from datetime import UTC, date, datetime, timedelta
from typing import Any

import duckdb
import pyarrow as pa
import sqlalchemy as sa
from sqlalchemy import Engine

from core.utc import as_utc
from storage import log_tail
from storage.instances import load_configs
from storage.lake import Lake
from storage.maintenance import read_table


@dataclass
class Outcome:
    """The result of one check: pass/fail, a one-line description and numbers for the UI."""

    passed: bool
    description: str
    metadata: dict[str, Any] = field(default_factory=dict)

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


def _con(lake: Lake, **tables: tuple[str, list[str]]) -> duckdb.DuckDBPyConnection:
    """DuckDB with ``name`` → the listed columns of each lake table (read whole: see read_table)."""
    con = duckdb.connect()
    for name, (table, columns) in tables.items():
        if lake.exists(table):
            con.register(name, read_table(lake, table, columns=columns))
    return con


def _has(con: duckdb.DuckDBPyConnection, name: str) -> bool:
    return bool(con.execute("select count(*) from duckdb_views() where view_name = ?", [name]).fetchone()[0])


def message_id_uniqueness(lake: Lake) -> Outcome:
    """silver/messages has at most one row per (instance_id, message_id) (``silver.checks``)."""
    from silver.checks import message_id_duplicates

    if not lake.exists("silver/messages"):
        return Outcome(True, "silver/messages does not exist yet", {"duplicate_keys": 0})
    dup_keys = message_id_duplicates(lake)
    return Outcome(
        dup_keys == 0,
        "message ids are unique" if dup_keys == 0 else f"{dup_keys} message ids appear more than once",
        {"duplicate_keys": int(dup_keys)},
    )


def conversation_id_uniqueness(lake: Lake) -> Outcome:
    """silver/conversations has one row per conversation_id (``silver.checks``)."""
    from silver.checks import conversation_id_duplicates

    dup = conversation_id_duplicates(lake) if lake.exists("silver/conversations") else 0
    return Outcome(
        dup == 0,
        "conversation ids are unique" if dup == 0 else f"{dup} conversation ids appear more than once",
        {"duplicate_keys": int(dup)},
    )


def reject_rate(lake: Lake, max_rate: float) -> Outcome:
    """Share of bronze webhooks that silver rejected (``silver.checks.reject_rate``)."""
    from silver.checks import reject_rate as silver_reject_rate

    measured = silver_reject_rate(lake)
    return Outcome(
        measured.passes(max_rate),
        f"reject rate {measured.rate:.4%} (limit {max_rate:.2%})",
        {
            "bronze_rows": measured.bronze_rows,
            "rejected": measured.rejects,
            "reject_rate": float(measured.rate),
            "limit": max_rate,
        },
    )


def _last_commit(lake: Lake, table: str) -> datetime | None:
    """When ``table``'s latest commit was made, found by commit path (``storage.log_tail``)."""
    version = log_tail.latest_version(lake, table)
    return None if version < 0 else log_tail.commit_time(lake, table, version)


def _max_received_at(lake: Lake) -> datetime | None:
    dt = lake.open_or_none("bronze/webhook_events")
    if dt is None:
        return None
    actions = pa.table(dt.get_add_actions(flatten=True))
    if "max.received_at" in actions.column_names and actions.num_rows:
        values = [v for v in actions.column("max.received_at").to_pylist() if v is not None]
        if values:
            latest = max(values)
            return as_utc(latest)
    con = _con(lake, b=("bronze/webhook_events", ["received_at"]))
    value = con.execute("select max(received_at) from b").fetchone()[0]
    return value


def bronze_freshness(lake: Lake, max_minutes: float, now: datetime | None = None) -> Outcome:
    """The newest webhook in bronze is at most ``max_minutes`` old (the receiver is receiving)."""
    now = now or datetime.now(UTC)
    latest = _max_received_at(lake)
    if latest is None:
        return Outcome(False, "bronze has no webhooks", {"limit_minutes": max_minutes})
    age = (now - latest).total_seconds() / 60
    return Outcome(
        age <= max_minutes,
        f"last webhook {age:.1f} min ago (limit {max_minutes:g})",
        {"last_received_at": latest.isoformat(), "age_minutes": round(age, 2), "limit_minutes": max_minutes},
    )


def gold_freshness(lake: Lake, gold_tables: list[str], max_minutes: float, now: datetime | None = None) -> Outcome:
    """Gold was rebuilt after bronze's last commit, or at most ``max_minutes`` before it."""
    now = now or datetime.now(UTC)
    bronze = _last_commit(lake, "bronze/webhook_events")
    commits = [c for t in gold_tables if (c := _last_commit(lake, t)) is not None]
    if not commits:
        return Outcome(False, "gold has not been built", {"limit_minutes": max_minutes})
    gold = min(commits)
    lag = max(0.0, ((bronze - gold).total_seconds() / 60) if bronze else 0.0)
    return Outcome(
        lag <= max_minutes,
        f"gold is {lag:.1f} min behind bronze (limit {max_minutes:g})",
        {
            "gold_built_at": gold.isoformat(),
            "bronze_committed_at": bronze.isoformat() if bronze else None,
            "lag_minutes": round(lag, 2),
            "limit_minutes": max_minutes,
        },
    )


def layer_row_counts(lake: Lake) -> Outcome:
    """Row counts agree between layers.

    - silver messages ≤ bronze message events (each message comes from ≥ 1 webhook);
    - gold conversation_facts has exactly one row per silver conversation (gold may hold more: it
      keeps the days silver retention removed);
    - gold daily_volume counts no more messages than silver holds, over the days silver holds whole
      (from two days after its first message's UTC date: no time zone reaches further back).
    """
    con = _con(
        lake,
        b=("bronze/webhook_events", ["event"]),
        m=("silver/messages", ["message_id", "event_at"]),
        c=("silver/conversations", ["conversation_id"]),
        f=("gold/conversation_facts", ["conversation_id"]),
        v=("gold/daily_volume", ["day", "messages"]),
    )

    def count(view: str, sql: str = "select count(*) from {v}") -> int | None:
        return int(con.execute(sql.format(v=view)).fetchone()[0] or 0) if _has(con, view) else None

    bronze_msgs = count("b", "select count(*) from {v} where event in ('messages.upsert', 'send.message')")
    silver_msgs = count("m")
    silver_conv = count("c")
    gold_conv = (
        count("f", "select count(*) from {v} where conversation_id in (select conversation_id from c)")
        if _has(con, "c")
        else count("f")
    )
    whole = "(select (min(event_at) at time zone 'UTC')::date + 2 from m)" if _has(con, "m") else "'-infinity'::date"
    gold_msgs = count("v", "select sum(messages) from {v} where day >= " + whole)
    problems: list[str] = []
    if bronze_msgs is not None and silver_msgs is not None and silver_msgs > bronze_msgs:
        problems.append(f"silver has {silver_msgs} messages but bronze only {bronze_msgs} message events")
    if silver_conv is not None and gold_conv is not None and silver_conv != gold_conv:
        problems.append(f"gold conversation_facts has {gold_conv} rows, silver conversations {silver_conv}")
    if silver_msgs is not None and gold_msgs is not None and gold_msgs > silver_msgs:
        problems.append(f"gold daily_volume counts {gold_msgs} messages, silver holds {silver_msgs}")
    return Outcome(
        not problems,
        "; ".join(problems) or "row counts agree between bronze, silver and gold",
        {
            "bronze_message_events": bronze_msgs,
            "silver_messages": silver_msgs,
            "silver_conversations": silver_conv,
            "gold_conversation_facts": gold_conv,
            "gold_daily_volume_messages": gold_msgs,
        },
    )


def reconcile_yesterday(lake: Lake, engine: Engine, now: datetime | None = None) -> Outcome:
    """Conversations opened yesterday (instance time zone): live ops store vs gold, id by id."""
    now = now or datetime.now(UTC)
    meta = sa.MetaData()
    try:
        conversations = sa.Table("conversations", meta, autoload_with=engine)
        sa.Table("instances", meta, autoload_with=engine)
    except sa.exc.NoSuchTableError:
        return Outcome(False, "the ops store has no conversations table (run `beazap db upgrade`)")
    zones = {i: c.zone for i, c in load_configs(engine).items()}
    with engine.connect() as conn:
        live: dict[str, set[str]] = {}
        days: dict[str, date] = {}
        for instance_id, zone in zones.items():
            yesterday = (now.astimezone(zone) - timedelta(days=1)).date()
            days[instance_id] = yesterday
            start = datetime.combine(yesterday, datetime.min.time(), zone).astimezone(UTC)
            end = start + timedelta(days=1)
            ids = conn.execute(
                sa.select(conversations.c.id).where(
                    conversations.c.instance_id == instance_id,
                    conversations.c.opened_at >= start,
                    conversations.c.opened_at < end,
                )
            ).scalars()
            live[instance_id] = set(ids)
    con = _con(lake, f=("gold/conversation_facts", ["instance_id", "conversation_id", "opened_day"]))
    gold: dict[str, set[str]] = {i: set() for i in zones}
    if _has(con, "f") and days:
        rows = con.execute(
            "select instance_id, conversation_id, opened_day from f where instance_id in (select unnest(?))",
            [list(days)],
        ).fetchall()
        for instance_id, conv_id, opened_day in rows:
            if opened_day == days.get(instance_id):
                gold[instance_id].add(conv_id)
    per_instance = {
        i: {
            "day": days[i].isoformat(),
            "live": len(live[i]),
            "gold": len(gold[i]),
            "only_live": len(live[i] - gold[i]),
            "only_gold": len(gold[i] - live[i]),
        }
        for i in sorted(zones)
    }
    mismatched = [i for i, v in per_instance.items() if v["only_live"] or v["only_gold"]]
    return Outcome(
        not mismatched,
        f"{len(mismatched)} instance(s) disagree for yesterday" if mismatched else "live store and gold agree",
        {
            "instances": per_instance,
            "live_total": sum(map(len, live.values())),
            "gold_total": sum(map(len, gold.values())),
        },
    )
