"""Auto-compaction of hot bronze partitions by the writer that fills them.

Every group commit adds one small Parquet file, and delta-rs' commit cost grows with the number
of active files (measured: ~11 ms at 100 files, ~40 ms at 500 on a local lake). The receiver
therefore compacts the partitions it is writing (``optimize.compact`` on ``received_date``, files
under 16 MiB) every ``bronze_compact_every_commits`` commits, in a background thread, while appends
continue, and writes a checkpoint. Compaction commits only rewrite data (``dataChange=false``), so
change-data-feed readers and concurrent appenders are unaffected. Scheduled maintenance
(``storage.maintenance``) still runs full optimize/checkpoint/vacuum.
"""

from __future__ import annotations

from collections.abc import Iterable
from datetime import date

from core.logging import get_logger
from storage.lake import Lake
from storage.lake_locks import CompactionBusyError, compaction_lock

__all__ = ["AUTO_COMPACT_TARGET_BYTES", "CompactionBusyError", "compact_partitions", "compaction_lock"]

log = get_logger(__name__)


# Files at least this large are left alone, so each compaction rewrites at most this much data
# (no ever-growing rewrite of the day's data); scheduled maintenance makes bigger files later.
AUTO_COMPACT_TARGET_BYTES = 16 * 1024 * 1024


def compact_partitions(
    lake: Lake,
    table: str,
    partition_column: str,
    days: Iterable[date],
    target_size: int = AUTO_COMPACT_TARGET_BYTES,
    checkpoint: bool = True,
) -> dict[str, int]:
    """Compact the given partitions of ``table`` and write a checkpoint; returns files removed/added.

    Raises :class:`CompactionBusyError` when another process holds :func:`compaction_lock`.

    The checkpoint matters because fast commits (``bronze.fastcommit``) skip delta-rs' post-commit
    hook: this keeps the log replay of every reader short.
    """
    removed = added = 0
    with compaction_lock(lake, table):
        dt = lake.open(table)
        for day in sorted(set(days)):
            metrics = dt.optimize.compact(
                partition_filters=[(partition_column, "=", day.isoformat())], target_size=target_size
            )
            removed += int(metrics.get("numFilesRemoved", 0))
            added += int(metrics.get("numFilesAdded", 0))
        if checkpoint:  # optimize left ``dt`` at the newest version: no second open (~25 ms) needed
            dt.create_checkpoint()
    return {"files_removed": removed, "files_added": added}
