"""Small hand-made silver tables for gold tests, docs examples and benchmarks.

:func:`write_silver` fills any missing column with null so a test states only what it cares about,
and writes rows with the exact silver Arrow schemas (``silver/schema.py``).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from datetime import datetime
from typing import Any

import pyarrow as pa

from silver import schema as s
from storage.lake import Lake

TABLES = {
    "messages": (s.MESSAGES, s.MESSAGES_SCHEMA, s.MESSAGES_PARTITIONS),
    "conversations": (s.CONVERSATIONS, s.CONVERSATIONS_SCHEMA, s.CONVERSATIONS_PARTITIONS),
    "calls": (s.CALLS, s.CALLS_SCHEMA, None),
    "ops_events": (s.OPS_EVENTS, s.OPS_EVENTS_SCHEMA, None),
}


def to_table(rows: Iterable[Mapping[str, Any]], schema: pa.Schema) -> pa.Table:
    rows = list(rows)
    columns = {f.name: [r.get(f.name) for r in rows] for f in schema}
    return pa.table(columns, schema=schema)


def write_silver(lake: Lake, name: str, rows: Iterable[Mapping[str, Any]], mode: str = "overwrite") -> None:
    """Write ``rows`` (dicts) as silver table ``name`` (messages, conversations, calls, ops_events)."""
    table, schema, partitions = TABLES[name]
    rows = [dict(r) for r in rows]
    for r in rows:
        if name == "messages" and r.get("event_at") is not None:
            r.setdefault("event_month", _month(r["event_at"]))
        if name == "conversations" and r.get("opened_at") is not None:
            r.setdefault("opened_month", _month(r["opened_at"]))
        if name == "calls" and r.get("offered_at") is not None:
            r.setdefault("event_month", _month(r["offered_at"]))
    lake.write(table, to_table(rows, schema), mode=mode, partition_by=partitions)


def _month(ts: datetime) -> str:
    return ts.strftime("%Y-%m")
