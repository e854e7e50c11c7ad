"""Constant-cost blind appends to a local Delta table (the receiver's hot path).

delta-rs (1.6) materializes the table's active-file list on every commit, so one append costs
~3 ms plus ~0.06 ms per file already in the table (measured: 11 ms at 100 files, 40 ms at 500).
A webhook receiver commits many times a second, so this module writes bronze appends the way
the Delta protocol defines a blind append, at a cost independent of the table's size:

1. write the batch as Parquet (pyarrow) under its ``received_date=…`` partition folder;
2. write the commit — ``commitInfo``, ``txn`` (app id + batch seq, for idempotent retries) and
   ``add`` actions — to ``_delta_log/<version>.json`` with an atomic *create-if-absent*
   (``os.link``), exactly like delta-rs' local log store;
3. if another writer took that version, read its commit: if it changed ``metaData`` or
   ``protocol`` stop (the caller falls back to delta-rs), otherwise try the next version.
   Blind appends never conflict with appends or compactions (nothing is read).

Durability (``fsync``, on by default): before :meth:`LocalBlindAppender.append` returns — and so
before any webhook of the batch is answered — the batch's Parquet files, the partition folders
that received them, the commit file and the ``_delta_log`` folder are flushed to stable storage, once
per group commit; a power loss after the 200 cannot lose the batch. ``BEAZAP_BRONZE_FSYNC=false``
turns it off (the cost is measured in ``benchmarks/RESULTS.md``).

Only for local tables whose protocol has no writer features beyond what an append must honour
(reader v1, writer ≤ 4: CDF needs no extra files for inserts). Checkpoints and compaction are
done by delta-rs (``bronze.compaction``), which reads these commits like its own.
"""

from __future__ import annotations

import json
import os
import time
import uuid
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq
from deltalake import DeltaTable

CLIENT = "beazap-bronze-fastcommit/1"
MAX_WRITER_VERSION = 4


class UnsupportedTableError(Exception):
    """The table's protocol or metadata changed in a way blind appends must not ignore."""


class LocalBlindAppender:
    """Appends Arrow batches to one local, partitioned Delta table with O(1) commits."""

    def __init__(
        self, table_dir: str | Path, schema: pa.Schema, partition_by: list[str], *, fsync: bool = True
    ) -> None:
        if len(partition_by) > 1:
            raise ValueError("one partition column at most")
        self.table_dir = Path(table_dir)
        self.log_dir = self.table_dir / "_delta_log"
        self.schema = schema
        self.partition_by = partition_by
        self.fsync = fsync
        self._durable_folders: set[Path] = set()
        dt = DeltaTable(str(self.table_dir))
        check_table(dt, schema, partition_by)
        self.next_version = dt.version() + 1

    def append(self, data: pa.Table, app_id: str, txn_version: int) -> int:
        """Commit ``data`` as one version carrying ``txn(app_id, txn_version)``; returns the version."""
        now_ms = int(time.time() * 1000)
        adds = [self._write_file(part, values, now_ms) for part, values in self._partitions(data)]
        lines = [
            {
                "commitInfo": {
                    "timestamp": now_ms,
                    "operation": "WRITE",
                    "operationParameters": {"mode": "Append", "partitionBy": json.dumps(self.partition_by)},
                    "operationMetrics": {"num_added_files": len(adds), "num_added_rows": data.num_rows},
                    "engineInfo": CLIENT,
                    "clientVersion": CLIENT,
                }
            },
            {"txn": {"appId": app_id, "version": txn_version, "lastUpdated": now_ms}},
            *({"add": add} for add in adds),
        ]
        payload = ("\n".join(json.dumps(line, separators=(",", ":")) for line in lines) + "\n").encode()
        tmp = self.log_dir / f"_commit_{uuid.uuid4().hex}.json.tmp"
        with open(tmp, "wb") as handle:
            handle.write(payload)
        if self.fsync:  # data files, their folders and the commit file, before the commit is linked
            self._sync_before_commit(adds, tmp)
        try:
            while True:
                target = self.log_dir / f"{self.next_version:020d}.json"
                try:
                    os.link(tmp, target)  # atomic create-if-absent
                except FileExistsError:
                    self._check_concurrent(target)
                    self.next_version += 1
                    continue
                version = self.next_version
                self.next_version += 1
                tmp.unlink(missing_ok=True)
                if self.fsync:
                    fsync_path(self.log_dir)  # the new log entry's name (and the temp file's removal)
                return version
        finally:
            tmp.unlink(missing_ok=True)

    def _sync_before_commit(self, adds: list[dict[str, object]], commit_tmp: Path) -> None:
        """fsync the batch's files, the folders naming them and the commit file, concurrently (the
        calls release the GIL; the disk can merge them into fewer journal flushes)."""
        files = [self.table_dir / str(add["path"]) for add in adds]
        paths = [*files, commit_tmp]
        for folder in sorted({f.parent for f in files}):
            paths.append(folder)
            if folder not in self._durable_folders and folder != self.table_dir:
                paths.append(folder.parent)  # the partition folder's own entry (it may be new)
                self._durable_folders.add(folder)
        list(_SYNC_POOL.map(fsync_path, dict.fromkeys(paths)))

    def _partitions(self, data: pa.Table) -> list[tuple[pa.Table, dict[str, str | None]]]:
        if not self.partition_by:
            return [(data, {})]
        column = self.partition_by[0]
        rest = data.drop_columns([column])
        values = data.column(column)
        out: list[tuple[pa.Table, dict[str, str | None]]] = []
        for value in pc.unique(values).to_pylist():
            mask = pc.is_null(values) if value is None else pc.equal(values, pa.scalar(value, values.type))
            text = None if value is None else (value.isoformat() if hasattr(value, "isoformat") else str(value))
            out.append((rest.filter(mask), {column: text}))
        return out

    def _write_file(self, part: pa.Table, values: dict[str, str | None], now_ms: int) -> dict[str, object]:
        folder = "/".join(f"{k}={'__HIVE_DEFAULT_PARTITION__' if v is None else v}" for k, v in values.items())
        name = f"part-00000-{uuid.uuid4()}-c000.snappy.parquet"
        relative = f"{folder}/{name}" if folder else name
        path = self.table_dir / relative
        path.parent.mkdir(parents=True, exist_ok=True)
        pq.write_table(part, path, compression="snappy")
        stats = {"numRecords": part.num_rows, "nullCount": {f: part.column(f).null_count for f in part.column_names}}
        return {
            "path": relative,
            "partitionValues": values,
            "size": path.stat().st_size,
            "modificationTime": now_ms,
            "dataChange": True,
            "stats": json.dumps(stats, separators=(",", ":")),
        }

    def _check_concurrent(self, commit: Path) -> None:
        for line in commit.read_text().splitlines():
            if not line.strip():
                continue
            action = json.loads(line)
            if "metaData" in action or "protocol" in action:
                raise UnsupportedTableError(f"concurrent metadata/protocol change in {commit.name}")


_SYNC_POOL = ThreadPoolExecutor(max_workers=4, thread_name_prefix="bronze-fsync")


def fsync_path(path: Path) -> None:
    """Flush one file's or folder's data and metadata to stable storage."""
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def check_table(dt: DeltaTable, schema: pa.Schema, partition_by: list[str]) -> None:
    """Raise :class:`UnsupportedTableError` unless blind appends of ``schema`` are safe on ``dt``."""
    protocol = dt.protocol()
    if protocol.min_reader_version > 1 or protocol.min_writer_version > MAX_WRITER_VERSION:
        raise UnsupportedTableError(f"protocol {protocol} needs delta-rs")
    if protocol.writer_features or protocol.reader_features:
        raise UnsupportedTableError("table features need delta-rs")
    metadata = dt.metadata()
    if list(metadata.partition_columns) != list(partition_by):
        raise UnsupportedTableError("partition columns differ")
    if pa.schema(dt.schema().to_arrow()).names != schema.names:
        raise UnsupportedTableError("schema differs")
    for key in metadata.configuration:
        if key.startswith(("delta.constraints.", "delta.columnMapping", "delta.generationExpression")):
            raise UnsupportedTableError(f"table property {key} needs delta-rs")
