"""Retention: delete what is older than each table's retention, in the lake and the ops store.

Defaults (``core.settings``): bronze raw payloads 24 months, silver 24 months, gold aggregates
kept, the live operational store 90 days (``live_window_days``). ``retention_table_days`` overrides
one table. Lake tables lose whole partitions where the rule's column is the partition column
(``DELETE`` on a partition predicate is a metadata-only commit), row-level ``DELETE`` otherwise;
files are then physically removed by ``vacuum`` once Delta's time-travel window passes
(``vacuum_retention_hours``, or immediately with ``vacuum_now``). The ops store drops expired
``messages`` partitions (PostgreSQL; ``storage.partitions.maintain``) and deletes closed
conversations, extracted actions and other rows past the live window.

``plan`` only counts (``beazap retention apply --dry-run``); ``apply`` deletes.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from datetime import UTC, date, datetime, timedelta
from typing import Any

import pyarrow as pa
import pyarrow.dataset as ds
import sqlalchemy as sa
from sqlalchemy import Engine

from core.logging import get_logger
from core.settings import Settings, get_settings
from gold.serving import store as serving_store
from storage import maintenance
from storage.lake import Lake

log = get_logger(__name__)


@dataclass(frozen=True)
class Rule:
    """How a lake table ages: the column compared with the cutoff and what kind of value it holds."""

    table: str
    column: str
    kind: str  # date | month ('YYYY-MM' string) | timestamp


LAKE_RULES: tuple[Rule, ...] = (
    Rule("bronze/webhook_events", "received_date", "date"),
    Rule("bronze/quarantine", "received_date", "date"),
    Rule("bronze/ops_events", "occurred_date", "date"),
    Rule("silver/messages", "event_month", "month"),
    Rule("silver/message_events", "event_month", "month"),
    Rule("silver/calls", "event_month", "month"),
    Rule("silver/conversations", "opened_month", "month"),
    Rule("silver/group_participants", "event_at", "timestamp"),
    Rule("silver/connection_events", "received_at", "timestamp"),
    Rule("silver/rejects", "received_at", "timestamp"),
    Rule("silver/ops_events", "occurred_at", "timestamp"),
)


@dataclass(frozen=True)
class StoreRule:
    """Rows of an ops-store table that are past the live window (``extra`` narrows them)."""

    table: str
    column: str
    extra: str | None = None  # SQL condition that must also hold (e.g. closed, already extracted)


STORE_RULES: tuple[StoreRule, ...] = (
    StoreRule("conversations", "last_message_at", "status <> 'open'"),
    StoreRule("actions", "occurred_at", "(source <> 'store' OR extracted_at IS NOT NULL)"),
    StoreRule("pending_message_events", "received_at"),
    StoreRule("outbound_requests", "updated_at", "status <> 'sending'"),
)


@dataclass
class RetentionItem:
    """One table's retention outcome (or plan)."""

    target: str  # lake table or "ops:<table>"
    keep_days: int | None
    cutoff: str | None
    rows: int = 0
    detail: str = ""


@dataclass
class RetentionReport:
    dry_run: bool
    items: list[RetentionItem] = field(default_factory=list)

    @property
    def total_rows(self) -> int:
        return sum(i.rows for i in self.items)

    def as_dict(self) -> dict[str, Any]:
        return {"dry_run": self.dry_run, "total_rows": self.total_rows, "items": [asdict(i) for i in self.items]}


def keep_days(settings: Settings, table: str) -> int | None:
    """Days ``table`` is kept (None = forever)."""
    if table in settings.retention_table_days:
        return settings.retention_table_days[table]
    layer = table.split("/", 1)[0]
    return {
        "bronze": settings.retention_bronze_days,
        "silver": settings.retention_silver_days,
        "gold": settings.retention_gold_days,
    }.get(layer)


def _cutoff_value(rule: Rule, cutoff: datetime) -> tuple[Any, str]:
    """(pyarrow scalar for counting, SQL literal for the Delta predicate) for ``rule``."""
    if rule.kind == "date":
        day: date = cutoff.date()
        return pa.scalar(day, pa.date32()), f"'{day.isoformat()}'"
    if rule.kind == "month":
        # Whole months only: a month goes once every day of it is past the cutoff.
        month = f"{cutoff:%Y-%m}"
        return pa.scalar(month, pa.string()), f"'{month}'"
    return pa.scalar(cutoff, pa.timestamp("us", tz="UTC")), f"'{cutoff.strftime('%Y-%m-%dT%H:%M:%S.%fZ')}'"


def _lake_item(lake: Lake, rule: Rule, days: int, now: datetime, dry_run: bool) -> RetentionItem:
    cutoff = now - timedelta(days=days)
    item = RetentionItem(target=rule.table, keep_days=days, cutoff=cutoff.isoformat())
    dt = lake.open_or_none(rule.table)
    if dt is None:
        item.detail = "absent"
        return item
    dataset = lake.dataset(rule.table, dt)
    if rule.column not in dataset.schema.names:
        item.detail = f"no column {rule.column}"
        return item
    scalar, literal = _cutoff_value(rule, cutoff)
    item.rows = maintenance.count_rows(lake, rule.table, ds.field(rule.column) < scalar, columns=[rule.column])
    if dry_run or item.rows == 0:
        item.detail = "would delete" if dry_run and item.rows else ""
        return item
    metrics = dt.delete(f"{rule.column} < {literal}")
    item.rows = int(metrics.get("num_deleted_rows", item.rows))
    item.detail = f"removed {metrics.get('num_removed_files', 0)} files (vacuum deletes them)"
    return item


def _store_item(engine: Engine, rule: StoreRule, days: int, now: datetime, dry_run: bool) -> RetentionItem:
    cutoff = now - timedelta(days=days)
    item = RetentionItem(target=f"ops:{rule.table}", keep_days=days, cutoff=cutoff.isoformat())
    meta = sa.MetaData()
    try:
        table = sa.Table(rule.table, meta, autoload_with=engine)
    except sa.exc.NoSuchTableError:
        item.detail = "absent"
        return item
    where = table.c[rule.column] < cutoff
    if rule.extra:
        where = sa.and_(where, sa.text(rule.extra))
    with engine.begin() as conn:
        if dry_run:
            item.rows = conn.execute(sa.select(sa.func.count()).select_from(table).where(where)).scalar_one()
            item.detail = "would delete" if item.rows else ""
        else:
            item.rows = conn.execute(sa.delete(table).where(where)).rowcount or 0
    return item


def _live_messages(engine: Engine, days: int, now: datetime, dry_run: bool) -> RetentionItem:
    from storage import partitions

    cutoff = now - timedelta(days=days)
    item = RetentionItem(target="ops:messages", keep_days=days, cutoff=cutoff.isoformat())
    if dry_run:
        from storage.tables import messages

        with engine.connect() as conn:
            item.rows = conn.execute(
                sa.select(sa.func.count()).select_from(messages).where(messages.c.timestamp < cutoff)
            ).scalar_one()
        item.detail = "would delete (partitions of whole months on PostgreSQL)" if item.rows else ""
        return item
    report = partitions.maintain(engine, live_window_days=days, now=now)
    item.rows = report.deleted_rows
    item.detail = f"dropped partitions {report.dropped}" if report.dropped else ""
    return item


def run(
    lake: Lake,
    engine: Engine | None,
    *,
    dry_run: bool = True,
    settings: Settings | None = None,
    now: datetime | None = None,
    vacuum_now: bool = False,
    layers: tuple[str, ...] = ("bronze", "silver", "gold"),
) -> RetentionReport:
    """Plan (``dry_run``) or apply retention to the lake tables of ``layers`` and the ops store.

    Pass ``engine=None`` to leave the ops store alone (e.g. one Dagster op per layer).
    """
    settings = settings or get_settings()
    now = now or datetime.now(UTC)
    report = RetentionReport(dry_run=dry_run)
    present = set(lake.tables())
    rules = list(LAKE_RULES)
    ruled = {r.table for r in rules}
    # Gold tables age only when a gold retention (or a per-table override) is configured.
    for table in sorted(present):
        if table.startswith("gold/") and table not in ruled and keep_days(settings, table) is not None:
            dt = lake.open(table)
            cols = lake.dataset(table, dt).schema
            for name in ("day", "date", "bucket_date", "opened_date", "month"):
                if name in cols.names:
                    kind = "month" if pa.types.is_string(cols.field(name).type) else "date"
                    rules.append(Rule(table, name, kind))
                    break
    for rule in rules:
        days = keep_days(settings, rule.table)
        if days is None or rule.table not in present or rule.table.split("/", 1)[0] not in layers:
            continue
        item = _lake_item(lake, rule, days, now, dry_run)
        report.items.append(item)
        if not dry_run and item.rows and vacuum_now:
            maintenance.vacuum(lake, rule.table, retention_hours=0)
    if not dry_run and any(item.rows and item.target.startswith("gold/") for item in report.items):
        serving_store.discard(lake)  # the metrics API's copies of the removed gold rows
    if engine is not None:
        days = settings.live_window_days
        report.items.append(_live_messages(engine, days, now, dry_run))
        for store_rule in STORE_RULES:
            report.items.append(_store_item(engine, store_rule, days, now, dry_run))
    log.info("retention.run", dry_run=dry_run, rows=report.total_rows, targets=len(report.items))
    return report
