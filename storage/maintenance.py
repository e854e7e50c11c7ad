"""Lake maintenance: compaction (``optimize``), checkpoints and ``vacuum`` of Delta tables.

Small appends (the receiver's group commits) leave many small files; compaction rewrites them into
large ones, a checkpoint lets readers skip replaying the whole JSON log, and ``vacuum`` deletes
files that no retained version references any more (after compaction, retention deletes and
erasure). Each function works on one ``layer/name`` table of a :class:`~storage.lake.Lake` and
returns plain dicts, so Dagster schedules and the CLI only report them.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterable, Iterator
from dataclasses import asdict, dataclass
from typing import Any

import pyarrow as pa
import pyarrow.dataset as ds
from deltalake import DeltaTable

from core.logging import get_logger
from storage.lake import Lake
from storage.lake_locks import compaction_lock

log = get_logger(__name__)

DEFAULT_VACUUM_RETENTION_HOURS = 168  # Delta's own default: 7 days of time travel for readers


@dataclass(frozen=True)
class MaintenanceResult:
    """What one maintenance step did to one table."""

    table: str
    action: str
    version_before: int | None
    version_after: int | None
    files_added: int = 0
    files_removed: int = 0

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


def optimize(lake: Lake, table: str, target_size: int | None = None) -> MaintenanceResult:
    """Compact small files of ``table`` into large ones (one commit; readers are never blocked)."""
    lock = contextlib.nullcontext() if lake.is_s3 else compaction_lock(lake, table, blocking=True)
    with lock:  # two concurrent compactions of the same files would duplicate their rows (delta-rs 1.6)
        dt = lake.open(table)
        before = dt.version()
        metrics = dt.optimize.compact(target_size=target_size)
        dt.update_incremental()
    result = MaintenanceResult(
        table=table,
        action="optimize",
        version_before=before,
        version_after=dt.version(),
        files_added=int(metrics.get("numFilesAdded", 0)),
        files_removed=int(metrics.get("numFilesRemoved", 0)),
    )
    log.info("lake.optimize", **result.as_dict())
    return result


def checkpoint(lake: Lake, table: str) -> MaintenanceResult:
    """Write a checkpoint at the current version and drop log files past the log retention."""
    dt = lake.open(table)
    version = dt.version()
    dt.create_checkpoint()
    dt.cleanup_metadata()
    result = MaintenanceResult(table=table, action="checkpoint", version_before=version, version_after=version)
    log.info("lake.checkpoint", **result.as_dict())
    return result


def vacuum(
    lake: Lake,
    table: str,
    retention_hours: int = DEFAULT_VACUUM_RETENTION_HOURS,
    dry_run: bool = False,
) -> MaintenanceResult:
    """Delete files no version newer than ``retention_hours`` references.

    ``retention_hours=0`` removes every unreferenced file at once (erasure): time travel to older
    versions then stops working, which is the point.
    """
    dt = lake.open(table)
    version = dt.version()
    removed = dt.vacuum(
        retention_hours=retention_hours,
        dry_run=dry_run,
        enforce_retention_duration=False,
        full=False,
    )
    result = MaintenanceResult(
        table=table,
        action="vacuum-dry-run" if dry_run else "vacuum",
        version_before=version,
        version_after=lake.open(table).version(),
        files_removed=len(removed),
    )
    log.info("lake.vacuum", **result.as_dict())
    return result


def maintain(
    lake: Lake,
    tables: Iterable[str] | None = None,
    *,
    compact: bool = True,
    make_checkpoint: bool = True,
    vacuum_retention_hours: int | None = None,
) -> list[MaintenanceResult]:
    """Compact, checkpoint and (when ``vacuum_retention_hours`` is set) vacuum several tables."""
    results: list[MaintenanceResult] = []
    for table in tables if tables is not None else lake.tables():
        if not lake.exists(table):
            continue
        if compact:
            results.append(optimize(lake, table))
        if make_checkpoint:
            results.append(checkpoint(lake, table))
        if vacuum_retention_hours is not None:
            results.append(vacuum(lake, table, retention_hours=vacuum_retention_hours))
    return results


def table_stats(dt: DeltaTable) -> dict[str, Any]:
    """Row count (from the log's file stats when present), file count and version of a table."""
    actions = dt.get_add_actions(flatten=True)
    tbl = pa.table(actions)
    rows: int | None = None
    if "num_records" in tbl.column_names:
        values = tbl.column("num_records").to_pylist()
        if all(v is not None for v in values):
            rows = int(sum(values))
    if rows is None:
        rows = 0
    return {"version": dt.version(), "files": tbl.num_rows, "rows": rows}


def scan_batches(
    lake: Lake, table: str, columns: list[str] | None = None, filter: ds.Expression | None = None
) -> Iterator[pa.RecordBatch]:
    """Stream ``table`` in its logical Delta schema, filtering after the read.

    Files written by Delta ``MERGE`` store strings as ``string_view`` while appends store
    ``string``; pyarrow's statistics pruning cannot compare the two (``Function 'equal' has no
    kernel matching input types (string, string_view)``), so filters are applied to batches
    already cast to the table's schema instead of being pushed into the scan.
    """
    dataset = lake.dataset(table)
    names = columns or dataset.schema.names
    target = pa.schema([dataset.schema.field(n) for n in names])
    for batch in dataset.scanner(columns=names).to_batches():
        if batch.num_rows == 0:
            continue
        data = pa.Table.from_batches([batch]).cast(target)
        if filter is not None:
            data = data.filter(filter)
        yield from data.to_batches()


def read_table(
    lake: Lake, table: str, columns: list[str] | None = None, filter: ds.Expression | None = None
) -> pa.Table:
    """All of ``table`` (or ``columns``/``filter`` of it) as one Arrow table; see :func:`scan_batches`."""
    dataset_schema = lake.dataset(table).schema
    names = columns or dataset_schema.names
    schema = pa.schema([dataset_schema.field(n) for n in names])
    return pa.Table.from_batches(list(scan_batches(lake, table, names, filter)), schema=schema)


def count_rows(lake: Lake, table: str, filter: ds.Expression | None = None, columns: list[str] | None = None) -> int:
    """Rows of ``table`` matching ``filter`` (see :func:`scan_batches`)."""
    if filter is None:
        return lake.dataset(table).count_rows()
    return sum(b.num_rows for b in scan_batches(lake, table, columns, filter))
