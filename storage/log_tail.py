"""Tail a Delta table's change data by commit number, reading each commit file by its path.

delta-rs lists the whole ``_delta_log`` folder for ``version()`` and ``load_cdf()``. While receivers
append many commits a second, a listing races the new files and delta-rs refuses the log ("Expected
contiguous commit files, but found gap"): the projector then retried without ever getting through
(measured by ``benchmarks/soak.py`` at 300 webhooks/s: stuck ~30 minutes behind). Commits are
created with put-if-absent, so versions are contiguous and a reader that knows where it stands can
find the next commits by path alone, without listing, and read what they inserted the way the Delta
change data feed defines it: a commit's ``cdc`` files when it wrote any (rows with
``_change_type = 'insert'``), else its ``add`` actions with ``dataChange = true``.

The one tail reader of bronze: the live projector and silver's incremental runs both find the latest
version with :func:`latest_version` and read what was appended with :func:`inserted_rows`; the
projector's lag, the bronze observer sensor and the freshness checks use :func:`latest_version` and
:func:`commit_time` too.
"""

from __future__ import annotations

import json
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime
from typing import Any
from urllib.parse import unquote

import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.fs as pafs
import pyarrow.parquet as pq

from storage.lake import Lake

_READERS = 8  # threads reading commit and data files (I/O and decoding outside the GIL)


def _commit_path(base: str, version: int) -> str:
    return f"{base}/_delta_log/{version:020d}.json"


def _exists(fs: pafs.FileSystem, base: str, version: int) -> bool:
    """Whether the commit file of ``version`` is in the log (old ones go after a checkpoint)."""
    return fs.get_file_info(_commit_path(base, version)).type != pafs.FileType.NotFound


def _checkpoint_version(fs: pafs.FileSystem, base: str) -> int:
    """The version of the last checkpoint (``_delta_log/_last_checkpoint``), -1 when there is none.

    Log clean-up removes only commits older than a checkpoint, so every commit from there on exists."""
    try:
        with fs.open_input_stream(f"{base}/_delta_log/_last_checkpoint") as handle:
            return int(json.loads(handle.read().decode("utf-8"))["version"])
    except (FileNotFoundError, KeyError, ValueError):
        return -1


def latest_version(lake: Lake, table: str, after: int = -1, limit: int | None = None) -> int:
    """The table's latest version, found by commit path (no listing); -1 when it has no commit.

    ``after`` is a version the caller has already read (a cursor) and ``limit`` caps the answer at
    ``after + limit``. The search starts at the later of ``after`` and the last checkpoint (a cursor
    behind a cleaned-up log still finds the commits that are there) and doubles its step, then
    bisects: commits are created contiguously with put-if-absent, so existence is monotone above a
    version that exists and ~2·log2(new commits) probes suffice.
    """
    fs, base = lake.filesystem(table)
    cap = None if limit is None else after + limit
    lo = max(after, _checkpoint_version(fs, base))  # known to be in the table (or -1: nothing known)
    if cap is not None and lo >= cap:
        return cap
    step = 1
    hi: int | None = None  # the lowest version known to be absent
    while hi is None:
        probe = lo + step if cap is None else min(lo + step, cap)
        if _exists(fs, base, probe):
            lo = probe
            if probe == cap:
                return lo
            step *= 2
        else:
            hi = probe
    while hi - lo > 1:
        mid = (lo + hi) // 2
        if _exists(fs, base, mid):
            lo = mid
        else:
            hi = mid
    return lo


def commit_time(lake: Lake, table: str, version: int) -> datetime | None:
    """The ``commitInfo.timestamp`` of one commit, or None when its log entry is not there."""
    fs, base = lake.filesystem(table)
    try:
        with fs.open_input_stream(_commit_path(base, version)) as handle:
            for line in handle.read().decode("utf-8").splitlines():
                info = json.loads(line).get("commitInfo") if line.strip() else None
                if info and info.get("timestamp"):
                    return datetime.fromtimestamp(int(info["timestamp"]) / 1000, UTC)
    except (OSError, ValueError):
        return None
    return None


def _data_path(base: str, path: str) -> str:
    if "://" in path:
        return path.split("://", 1)[1]
    return f"{base}/{unquote(path)}"


def _read_file(fs: pafs.FileSystem, path: str, partitions: dict[str, Any], schema: pa.Schema) -> pa.Table:
    with fs.open_input_file(path) as handle:  # one small file: ParquetFile, without a dataset's set-up
        data = pq.ParquetFile(handle).read(use_threads=False)
    for name, value in partitions.items():
        if name in schema.names and name not in data.column_names:
            typ = schema.field(name).type
            data = data.append_column(name, pa.array([value] * data.num_rows, pa.string()).cast(typ))
    return data


def inserted_rows(lake: Lake, table: str, start: int, end: int, schema: pa.Schema) -> pa.Table:
    """Rows inserted by commits ``start..end`` (inclusive), in ``schema`` plus ``_commit_version``.

    Read by commit path; when a commit file of the range was cleaned up after a checkpoint (a reader
    stopped for long), delta-rs' change data feed reads the range instead."""
    try:
        return _inserted_by_path(lake, table, start, end, schema)
    except FileNotFoundError:
        data = pa.table(lake.open(table).load_cdf(starting_version=start, ending_version=end))
        data = data.filter(pc.equal(data["_change_type"].cast(pa.string()), "insert"))
        return data.select([*schema.names, "_commit_version"]).cast(_with_version(schema))


def _with_version(schema: pa.Schema) -> pa.Schema:
    return schema.append(pa.field("_commit_version", pa.int64()))


def _inserted_by_path(lake: Lake, table: str, start: int, end: int, schema: pa.Schema) -> pa.Table:
    fs, base = lake.filesystem(table)

    def commit(version: int) -> list[pa.Table]:
        with fs.open_input_stream(_commit_path(base, version)) as handle:
            actions = [json.loads(line) for line in handle.read().decode("utf-8").splitlines() if line.strip()]
        cdc = [a["cdc"] for a in actions if "cdc" in a]
        files = cdc or [a["add"] for a in actions if "add" in a and a["add"].get("dataChange", True)]
        out = []
        for entry in files:
            data = _read_file(fs, _data_path(base, entry["path"]), entry.get("partitionValues") or {}, schema)
            if cdc:
                data = data.filter(pc.equal(data["_change_type"].cast(pa.string()), "insert"))
            data = data.select(schema.names).cast(schema)
            out.append(data.append_column("_commit_version", pa.array([version] * data.num_rows, pa.int64())))
        return out

    # a commit of a receiver holds one small file per partition: reading them one after the other costs
    # ~1 ms each in set-up; the reads release the GIL, so a few threads read them ~3x faster (measured)
    with ThreadPoolExecutor(max_workers=_READERS) as pool:
        parts = [t for tables in pool.map(commit, range(start, end + 1)) for t in tables]
    return pa.concat_tables(parts) if parts else _with_version(schema).empty_table()
