"""Tail a Delta table's change data by commit number, reading each commit file by its path.

delta-rs lists the whole ``_delta_log`` folder for ``version()`` and ``load_cdf()``. While receivers
append many commits a second, a listing races the new files and delta-rs refuses the log ("Expected
contiguous commit files, but found gap"): the projector then retried without ever getting through
(measured by ``benchmarks/soak.py`` at 300 webhooks/s: stuck ~30 minutes behind). Commits are
created with put-if-absent, so versions are contiguous and a reader that knows where it stands can
find the next commits by path alone, without listing, and read what they inserted the way the Delta
change data feed defines it: a commit's ``cdc`` files when it wrote any (rows with
``_change_type = 'insert'``), else its ``add`` actions with ``dataChange = true``.
"""

from __future__ import annotations

import json
from typing import Any
from urllib.parse import unquote

import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.fs as pafs
import pyarrow.parquet as pq

from storage.lake import Lake


def _commit_path(base: str, version: int) -> str:
    return f"{base}/_delta_log/{version:020d}.json"


def commit_exists(lake: Lake, table: str, version: int) -> bool:
    """Whether the commit file of ``version`` is in the log (old ones go after a checkpoint)."""
    fs, base = lake.filesystem(table)
    return fs.get_file_info(_commit_path(base, version)).type != pafs.FileType.NotFound


def last_commit_within(lake: Lake, table: str, after: int, limit: int) -> int:
    """The highest version in ``(after, after + limit]`` whose commit file exists (``after`` if none).

    Existence is monotone above a version that exists, so a binary search needs ~log2(limit) probes.
    """

    def exists(version: int) -> bool:
        return commit_exists(lake, table, version)

    lo, hi = after, after + limit  # invariant: lo exists (or is the cursor), everything above hi unknown
    if not exists(lo + 1):
        return after
    lo += 1
    while lo < hi:
        mid = (lo + hi + 1) // 2
        if exists(mid):
            lo = mid
        else:
            hi = mid - 1
    return lo


def _data_path(base: str, path: str) -> str:
    if "://" in path:
        return path.split("://", 1)[1]
    return f"{base}/{unquote(path)}"


def _read_file(fs: pafs.FileSystem, path: str, partitions: dict[str, Any], schema: pa.Schema) -> pa.Table:
    data = pq.read_table(path, filesystem=fs)
    for name, value in partitions.items():
        if name in schema.names and name not in data.column_names:
            typ = schema.field(name).type
            data = data.append_column(name, pa.array([value] * data.num_rows, pa.string()).cast(typ))
    return data


def inserted_rows(lake: Lake, table: str, start: int, end: int, schema: pa.Schema) -> pa.Table:
    """Rows inserted by commits ``start..end`` (inclusive), in ``schema`` plus ``_commit_version``."""
    fs, base = lake.filesystem(table)
    out_schema = schema.append(pa.field("_commit_version", pa.int64()))
    parts: list[pa.Table] = []
    for version in range(start, end + 1):
        with fs.open_input_stream(_commit_path(base, version)) as handle:
            actions = [json.loads(line) for line in handle.read().decode("utf-8").splitlines() if line.strip()]
        cdc = [a["cdc"] for a in actions if "cdc" in a]
        files = cdc or [a["add"] for a in actions if "add" in a and a["add"].get("dataChange", True)]
        for entry in files:
            data = _read_file(fs, _data_path(base, entry["path"]), entry.get("partitionValues") or {}, schema)
            if cdc:
                data = data.filter(pc.equal(data["_change_type"].cast(pa.string()), "insert"))
            data = data.select(schema.names).cast(schema)
            parts.append(data.append_column("_commit_version", pa.array([version] * data.num_rows, pa.int64())))
    return pa.concat_tables(parts) if parts else out_schema.empty_table()
