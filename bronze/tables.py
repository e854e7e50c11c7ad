"""Create the bronze tables (schema, partitioning, change data feed) in one place.

Every writer of bronze — the receiver, the simulator, action-log extraction, tests and benchmarks —
calls :func:`ensure_tables` so each table is always created with the change data feed that the
live projector and silver tail.
"""

from __future__ import annotations

import pyarrow as pa

from bronze.schema import (
    CDF_CONFIG,
    OPS_EVENTS,
    OPS_EVENTS_PARTITIONS,
    OPS_EVENTS_SCHEMA,
    QUARANTINE,
    QUARANTINE_PARTITIONS,
    QUARANTINE_SCHEMA,
    WEBHOOK_EVENTS,
    WEBHOOK_EVENTS_PARTITIONS,
    WEBHOOK_EVENTS_SCHEMA,
)
from storage.lake import Lake

BRONZE_TABLES: dict[str, tuple[pa.Schema, list[str]]] = {
    WEBHOOK_EVENTS: (WEBHOOK_EVENTS_SCHEMA, WEBHOOK_EVENTS_PARTITIONS),
    QUARANTINE: (QUARANTINE_SCHEMA, QUARANTINE_PARTITIONS),
    OPS_EVENTS: (OPS_EVENTS_SCHEMA, OPS_EVENTS_PARTITIONS),
}


def ensure_tables(lake: Lake, *tables: str) -> None:
    """Create the named bronze tables (all of them when none is named) if they do not exist yet."""
    for table in tables or tuple(BRONZE_TABLES):
        schema, partitions = BRONZE_TABLES[table]
        lake.create(table, schema, partitions, configuration=CDF_CONFIG)
