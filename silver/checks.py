"""Data-quality checks over silver that Dagster asset checks wrap (plain functions, no Dagster).

- :func:`message_id_duplicates`: rows sharing ``(instance_id, message_id)`` in ``silver/messages``
  (must be 0);
- :func:`reject_rate`: share of bronze webhook rows that silver could not parse;
- :func:`conversation_id_duplicates`: conversation ids present more than once (must be 0).
"""

from __future__ import annotations

from dataclasses import dataclass

import duckdb

from bronze import schema as bronze_schema
from silver import schema as silver_schema
from storage.lake import Lake


def _scalar(lake: Lake, table: str, sql: str) -> int:
    dt = lake.open_or_none(table)
    if dt is None:
        return 0
    con = duckdb.connect()
    try:
        con.register("t", lake.dataset(table, dt))
        return int(con.execute(sql).fetchall()[0][0] or 0)
    finally:
        con.close()


def message_id_duplicates(lake: Lake) -> int:
    """Number of (instance, message id) keys that appear more than once in silver/messages."""
    return _scalar(
        lake,
        silver_schema.MESSAGES,
        "select count(*) from (select instance_id, message_id from t group by all having count(*) > 1)",
    )


def conversation_id_duplicates(lake: Lake) -> int:
    return _scalar(
        lake,
        silver_schema.CONVERSATIONS,
        "select count(*) from (select conversation_id from t group by all having count(*) > 1)",
    )


@dataclass(frozen=True)
class RejectRate:
    rejects: int
    bronze_rows: int

    @property
    def rate(self) -> float:
        return self.rejects / self.bronze_rows if self.bronze_rows else 0.0

    def passes(self, max_rate: float = 0.01) -> bool:
        return self.rate <= max_rate


def reject_rate(lake: Lake) -> RejectRate:
    """Rejected receipts / bronze webhook rows (both whole tables)."""
    rejects = _scalar(lake, silver_schema.REJECTS, "select count(distinct receipt_id) from t")
    total = _scalar(lake, bronze_schema.WEBHOOK_EVENTS, "select count(*) from t")
    return RejectRate(rejects=rejects, bronze_rows=total)
