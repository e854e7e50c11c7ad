"""The serving store: gold laid out for the metrics API once per gold version, shared by every worker.

One folder per version of the served gold tables (:data:`SERVED_TABLES`), under the store root
(:func:`default_root`: ``<lake>/_serving`` for a local lake, a local folder for S3):

- ``serving.duckdb``: the served tables sorted by instance and day (DuckDB's zone maps skip everything
  else of a query), the slim rollups :data:`DERIVED`, each instance's first/last day with data
  (``gold.data_days``) and the ``gold.stats`` macros — opened **read-only** by every API worker, so
  nothing is copied at start-up and DuckDB reads (and caches, up to :data:`MEMORY_LIMIT`) only the
  blocks a query touches;
- ``arrays/``: the fast path's numpy columns (``gold.serving.fast.build``), one ``.npy`` per column,
  **memory-mapped** read-only: the pages live once in the OS page cache for all workers.

:func:`ensure` builds the folder when it is missing, under an exclusive lock on ``<root>/.lock`` so
several workers (and the gold build) never build the same version twice; a folder appears only when
complete (built under a temporary name, then renamed). Older folders are removed after a new one is
published (a worker still reading one keeps its open files). The folder name hashes the table versions
and the definitions that shape the store (:func:`code_digest`), so a change to them builds a fresh one.
"""

from __future__ import annotations

import fcntl
import hashlib
import json
import mmap
import os
import shutil
import time
from dataclasses import dataclass
from datetime import date
from functools import lru_cache
from pathlib import Path
from typing import Any

import duckdb
import numpy as np
import pyarrow as pa

from core.logging import get_logger
from core.settings import DEFAULT_HOME
from gold.serving import fast
from gold.stats import install as install_macros
from storage.lake import Lake

log = get_logger(__name__)

# The gold tables the metrics queries read (``gold.serving.queries``); the others are not served.
SERVED_TABLES = (
    "reply_waits",
    "conversation_facts",
    "daily_volume",
    "hourly_volume",
    "daily_conversations",
    "heatmap",
    "calls_daily",
    "contact_days",
)
SORT_KEYS = {t: "instance_id, day" for t in SERVED_TABLES} | {
    "conversation_facts": "instance_id, opened_day, opened_at",
    "reply_waits": "instance_id, opened_day",
}
# Slim rollups for the common unfiltered volume queries (messages summed over the kind / chat type /
# attendant / team dimensions).
DERIVED = (
    "create table gold.hourly_totals as select instance_id, day, hour, direction, "
    "sum(messages)::bigint as messages, sum(automated_messages)::bigint as automated_messages "
    "from gold.hourly_volume group by all order by instance_id, day, hour",
    "create table gold.daily_totals as select instance_id, day, direction, "
    "sum(messages)::bigint as messages, sum(automated_messages)::bigint as automated_messages "
    "from gold.daily_volume group by all order by instance_id, day",
    # Each instance's first and last local day with data (messages, conversations or calls).
    "create table gold.data_days as select instance_id, min(day) as first_day, max(day) as last_day from ("
    "select instance_id, day from gold.daily_totals union all select instance_id, opened_day "
    "from gold.conversation_facts union all select instance_id, day from gold.calls_daily) group by instance_id",
)
MEMORY_LIMIT = "512MB"
"""DuckDB's buffer cache per worker over the store file (blocks beyond it are read again from disk)."""
ARRAY_GROUPS = ("hourly", "daily", "conversations", "facts", "waits", "calls", "people")
READY = "READY"


def default_root(lake: Lake) -> Path:
    """Where a lake's serving stores live: beside the layers of a local lake, else under the home folder."""
    if lake.is_s3:
        return DEFAULT_HOME / "serving" / hashlib.sha256(lake.root.encode()).hexdigest()[:16]
    return Path(lake.root) / "_serving"


@lru_cache(maxsize=1)
def code_digest() -> str:
    """A digest of what shapes a store: the served tables, sort keys, rollups, macros and the code that
    writes the tables and arrays (edits elsewhere, e.g. to a query or a docstring, reuse the store)."""
    import inspect

    from gold.stats import MACROS

    parts = [repr((SERVED_TABLES, SORT_KEYS, DERIVED, MACROS, ARRAY_GROUPS))]
    parts += [inspect.getsource(fn) for fn in (build, save_arrays, fast.build, fast._load, fast.GoldArrays)]
    parts += [repr((fast.FACT_VALUES, fast.FACT_OUTCOMES, fast.WAIT_VALUES, fast.WAIT_OUTCOMES))]
    return hashlib.sha256("\n".join(parts).encode()).hexdigest()[:12]


def store_key(versions: dict[str, int | None]) -> str:
    """The folder name of the store for these table versions."""
    served = "-".join(str(versions.get(t, "x")) for t in SERVED_TABLES)
    return f"v{served}-{code_digest()}"


@lru_cache(maxsize=1)
def empty_gold() -> dict[str, pa.Table]:
    """Empty Arrow tables with every gold table's schema (gold SQL run over empty silver)."""
    import tempfile

    from gold.runner import GOLD_TABLES, compute, prepare

    with tempfile.TemporaryDirectory() as tmp:
        con = prepare(Lake(root=tmp), engine=None)
        try:
            compute(con)
            return {t: con.sql(f"select * from gold.{t} limit 0").to_arrow_table() for t in GOLD_TABLES}
        finally:
            con.close()


@dataclass
class ServingStore:
    """One opened store: a read-only DuckDB connection, the memory-mapped arrays and the data days."""

    path: Path
    db: duckdb.DuckDBPyConnection
    arrays: fast.GoldArrays
    days: dict[str, tuple[date, date]]


def ensure(lake: Lake, versions: dict[str, int | None], root: Path | None = None) -> Path:
    """The folder of the store for ``versions``, built first when missing (once, under the lock)."""
    root = root or default_root(lake)
    folder = root / store_key(versions)
    if (folder / READY).exists():
        return folder
    root.mkdir(parents=True, exist_ok=True)
    with open(root / ".lock", "a+") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        try:
            if not (folder / READY).exists():
                build(lake, versions, folder)
                _remove_others(root, keep=folder.name)
        finally:
            fcntl.flock(lock, fcntl.LOCK_UN)
    return folder


def discard(lake: Lake, root: Path | None = None) -> int:
    """Remove every store of ``lake`` (after an erasure or retention rewrote gold: the stores hold copies
    of the old rows). API readers build a fresh one from the current gold on their next refresh; a
    worker still reading a removed one keeps its open files until then. Returns how many were removed."""
    root = root or default_root(lake)
    if not root.is_dir():
        return 0
    with open(root / ".lock", "a+") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        try:
            folders = [entry for entry in root.iterdir() if entry.is_dir()]
            for entry in folders:
                shutil.rmtree(entry, ignore_errors=True)
        finally:
            fcntl.flock(lock, fcntl.LOCK_UN)
    return len(folders)


def _remove_others(root: Path, keep: str) -> None:
    for entry in root.iterdir():
        if entry.is_dir() and entry.name != keep:
            shutil.rmtree(entry, ignore_errors=True)


def build(lake: Lake, versions: dict[str, int | None], folder: Path) -> None:
    """Write the store for ``versions`` of the gold tables into ``folder`` (atomically: temp + rename)."""
    started = time.perf_counter()
    tmp = folder.with_name(f"{folder.name}.tmp-{os.getpid()}")
    shutil.rmtree(tmp, ignore_errors=True)
    (tmp / "arrays").mkdir(parents=True)
    con = duckdb.connect(str(tmp / "serving.duckdb"))
    try:
        con.execute("set TimeZone = 'UTC'")
        con.execute("set preserve_insertion_order = true")
        con.execute("create schema gold")
        install_macros(con)
        empties = empty_gold()
        for table in SERVED_TABLES:
            version = versions.get(table)
            source: Any = (
                lake.dataset(f"gold/{table}", lake.open(f"gold/{table}", version=version))
                if version is not None
                else empties[table]
            )
            con.register("__src", source)
            con.execute(f"create table gold.{table} as select * from __src order by {SORT_KEYS[table]}")
            con.unregister("__src")
        for statement in DERIVED:
            con.execute(statement)
        save_arrays(fast.build(con), tmp / "arrays")
        con.execute("checkpoint")
    finally:
        con.close()
    (tmp / READY).write_text(json.dumps(versions))
    os.replace(tmp, folder)
    log.info("gold serving store built", seconds=round(time.perf_counter() - started, 3))


def save_arrays(arrays: fast.GoldArrays, folder: Path) -> None:
    """Each column as ``<group>.<column>.npy``; ranges and ids in ``meta.json``."""
    meta: dict[str, Any] = {"ids": arrays.ids}
    for group in ARRAY_GROUPS:
        cols: fast.Columns = getattr(arrays, group)
        np.save(folder / f"{group}.day.npy", cols.day)
        for name, values in cols.cols.items():
            np.save(folder / f"{group}.{name}.npy", values)
        meta[group] = {"columns": list(cols.cols), "ranges": cols.ranges}
    (folder / "meta.json").write_text(json.dumps(meta))


def _mapped(path: Path) -> np.ndarray:
    """A read-only memory map of one ``.npy`` as a plain ndarray (an empty column is read). The kernel is
    asked to read the file ahead into the page cache (shared by every worker; nothing is copied into
    this process), so a first query does not wait on the disk."""
    try:
        mapped = np.load(path, mmap_mode="r")
    except ValueError:  # a zero-length array cannot be mapped
        return np.load(path)
    raw = getattr(mapped, "_mmap", None)
    if raw is not None and hasattr(mmap, "MADV_WILLNEED"):
        raw.madvise(mmap.MADV_WILLNEED)
    return mapped.view(np.ndarray)


def load_arrays(folder: Path) -> fast.GoldArrays:
    meta = json.loads((folder / "meta.json").read_text())
    groups = {
        group: fast.Columns(
            day=_mapped(folder / f"{group}.day.npy"),
            cols={c: _mapped(folder / f"{group}.{c}.npy") for c in meta[group]["columns"]},
            ranges={k: (int(v[0]), int(v[1])) for k, v in meta[group]["ranges"].items()},
        )
        for group in ARRAY_GROUPS
    }
    return fast.GoldArrays(**groups, ids=meta["ids"])


def open_store(folder: Path) -> ServingStore:
    """Open a built store: DuckDB read-only (bounded cache), arrays memory-mapped."""
    db = duckdb.connect(str(folder / "serving.duckdb"), read_only=True, config={"memory_limit": MEMORY_LIMIT})
    db.execute("set TimeZone = 'UTC'")
    days = {r[0]: (r[1], r[2]) for r in db.execute("select * from gold.data_days").fetchall()}
    return ServingStore(path=folder, db=db, arrays=load_arrays(folder / "arrays"), days=days)
