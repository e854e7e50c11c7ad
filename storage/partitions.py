"""Monthly partitions of the live ``messages`` table on PostgreSQL (SQLite keeps a plain table).

Migration 0002 creates ``messages`` ``PARTITION BY RANGE ("timestamp")`` with a default partition and
monthly children named ``messages_pYYYYMM``. :func:`maintain` (``beazap ops maintain-partitions``, a
Dagster schedule later) creates the coming months and drops months that ended before the live window
(``BEAZAP_LIVE_WINDOW_DAYS``, 90 by default). On SQLite it deletes messages older than the window.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta

from sqlalchemy import Engine, delete, text

from storage.tables import messages

PARTITION_RE = re.compile(r"^messages_(p\d{6}|default)$")


def is_partition_table(name: str | None) -> bool:
    """True for the partition children of ``messages`` (excluded from model/migration comparison)."""
    return bool(name) and PARTITION_RE.match(name) is not None  # type: ignore[arg-type]


def _month_start(day: date) -> date:
    return day.replace(day=1)


def _add_months(day: date, months: int) -> date:
    index = day.year * 12 + day.month - 1 + months
    return date(index // 12, index % 12 + 1, 1)


def partition_name(month: date) -> str:
    return f"messages_p{month:%Y%m}"


@dataclass
class MaintenanceReport:
    created: list[str] = field(default_factory=list)
    dropped: list[str] = field(default_factory=list)
    deleted_rows: int = 0


def existing_partitions(engine: Engine) -> list[str]:
    """Names of the monthly partitions of ``messages`` (PostgreSQL only; empty elsewhere)."""
    if engine.dialect.name != "postgresql":
        return []
    with engine.connect() as conn:
        rows = conn.execute(
            text(
                "SELECT c.relname FROM pg_inherits i JOIN pg_class c ON c.oid = i.inhrelid "
                "JOIN pg_class p ON p.oid = i.inhparent WHERE p.relname = 'messages' ORDER BY 1"
            )
        ).scalars()
        return [r for r in rows if r.startswith("messages_p")]


def create_months(engine: Engine, first: date, count: int) -> list[str]:
    """Create ``count`` monthly partitions from the month of ``first`` (PostgreSQL; idempotent).

    For back-filling history (imports, benchmarks); rows of those months must not already sit in
    the default partition.
    """
    if engine.dialect.name != "postgresql":
        return []
    created = []
    existing = set(existing_partitions(engine))
    with engine.begin() as conn:
        for i in range(count):
            start = _add_months(_month_start(first), i)
            name = partition_name(start)
            if name in existing:
                continue
            end = _add_months(start, 1)
            conn.execute(
                text(
                    f'CREATE TABLE IF NOT EXISTS "{name}" PARTITION OF messages '
                    f"FOR VALUES FROM ('{start.isoformat()} 00:00:00+00') TO ('{end.isoformat()} 00:00:00+00')"
                )
            )
            created.append(name)
    return created


def maintain(
    engine: Engine, *, months_ahead: int = 3, live_window_days: int = 90, now: datetime | None = None
) -> MaintenanceReport:
    """Create partitions from this month to ``months_ahead`` ahead and drop those past the window.

    A month is dropped only when it ended before ``now - live_window_days`` (whole months only).
    Idempotent; safe to run at any frequency.
    """
    now = now or datetime.now(UTC)
    cutoff = now - timedelta(days=live_window_days)
    report = MaintenanceReport()
    if engine.dialect.name != "postgresql":
        with engine.begin() as conn:
            report.deleted_rows = conn.execute(delete(messages).where(messages.c.timestamp < cutoff)).rowcount or 0
        return report
    this_month = _month_start(now.date())
    existing = set(existing_partitions(engine))
    with engine.begin() as conn:
        for i in range(months_ahead + 1):
            start = _add_months(this_month, i)
            name = partition_name(start)
            if name in existing:
                continue
            end = _add_months(start, 1)
            conn.execute(
                text(
                    f'CREATE TABLE IF NOT EXISTS "{name}" PARTITION OF messages '
                    f"FOR VALUES FROM ('{start.isoformat()} 00:00:00+00') TO ('{end.isoformat()} 00:00:00+00')"
                )
            )
            report.created.append(name)
        for name in sorted(existing):
            start = datetime.strptime(name[len("messages_p") :], "%Y%m").replace(tzinfo=UTC)
            end = datetime.combine(_add_months(start.date(), 1), datetime.min.time(), tzinfo=UTC)
            if end <= cutoff:
                conn.execute(text(f'DROP TABLE IF EXISTS "{name}"'))
                report.dropped.append(name)
        # Rows of the default partition past the window go too (it only holds out-of-range months).
        report.deleted_rows = (
            conn.execute(text('DELETE FROM messages_default WHERE "timestamp" < :c'), {"c": cutoff}).rowcount or 0
        )
    return report
