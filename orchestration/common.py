"""What every domain module of the Dagster code location shares: asset keys, pools, table metadata.

No Dagster object is built here and nothing reads settings: the domain modules in
:mod:`orchestration.defs` use these helpers to describe their assets the same way.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import dagster as dg
import pyarrow as pa

from orchestration import quality
from storage import log_tail
from storage.lake import Lake

OWNERS = ["team:beazap-data"]
EAGER = dg.AutomationCondition.eager()


def pool(layer: str) -> str:
    """Concurrency pool of the writers of one lake layer (limit 1: one writer at a time)."""
    return f"lake_{layer}"


def key(table: str) -> dg.AssetKey:
    """``bronze/webhook_events`` → AssetKey(["bronze", "webhook_events"])."""
    return dg.AssetKey(table.split("/"))


def table_schema(schema: pa.Schema) -> dg.TableSchema:
    """Dagster column schema from an Arrow schema (shown in the asset's Columns tab)."""
    return dg.TableSchema(
        columns=[
            dg.TableColumn(name=f.name, type=str(f.type), constraints=dg.TableColumnConstraints(nullable=f.nullable))
            for f in schema
        ]
    )


def delta_metadata(lake: Lake, table: str) -> dict[str, Any]:
    """Row count, Delta version and file count of a table, as Dagster metadata."""
    from storage.maintenance import table_stats

    version = log_tail.latest_version(lake, table)  # then opened at it: no listing race with appends
    if version < 0:
        return {"delta_version": -1, "dagster/row_count": 0}
    dt = lake.open(table, version=version)
    stats = table_stats(dt)
    return {
        "delta_version": stats["version"],
        "dagster/row_count": stats["rows"],
        "files": stats["files"],
        "dagster/uri": lake.uri(table),
    }


def scalars(values: Mapping[str, Any]) -> dict[str, Any]:
    """Only the values Dagster shows as plain metadata (numbers, strings, booleans)."""
    return {k: v for k, v in values.items() if isinstance(v, int | float | str | bool)}


def check_result(outcome: quality.Outcome, severity: dg.AssetCheckSeverity) -> dg.AssetCheckResult:
    """A :class:`quality.Outcome` as an asset check result (dicts and lists as JSON metadata)."""
    metadata: dict[str, Any] = {k: v for k, v in outcome.metadata.items() if v is not None}
    metadata["summary"] = outcome.description
    flat = {k: dg.MetadataValue.json(v) if isinstance(v, dict | list) else v for k, v in metadata.items()}
    return dg.AssetCheckResult(passed=outcome.passed, severity=severity, metadata=flat)
