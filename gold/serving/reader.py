"""The metrics reader: a long-lived in-memory DuckDB copy of gold, refreshed on change.

At first use every ``gold/<table>`` Delta table is loaded into an in-memory DuckDB database (native
tables scan far faster than Arrow datasets, which keeps endpoint latency in milliseconds). A
background thread checks the tables' Delta versions every ``gold_refresh_seconds`` and, when any
changed, loads a fresh copy and swaps it in atomically; requests in flight keep the old copy.
:attr:`GoldReader.fingerprint` (the versions) is part of every cache key, so a rebuild of gold
invalidates cached answers. With the DuckDB copy it builds the numpy arrays of the fast path
(``gold.serving.fast``) and swaps both together. The copy has the ``gold.stats`` macros installed,
so the serving SQL (``gold.serving.queries``) names the same rules as the gold build, and it knows
each instance's first and last day with data (:meth:`GoldReader.data_days`).
"""

from __future__ import annotations

import threading
import time
from datetime import date
from functools import lru_cache
from typing import Any

import duckdb
import pyarrow as pa

from core.logging import get_logger
from gold.runner import GOLD_TABLES
from gold.serving import fast
from gold.stats import install as install_macros
from storage.lake import Lake

log = get_logger(__name__)

SORT_KEYS = {t: "instance_id, day" for t in GOLD_TABLES} | {
    "conversation_facts": "instance_id, opened_day, opened_at",
    "reply_waits": "instance_id, opened_day",
}
# Slim in-memory rollups for the common unfiltered volume queries (messages summed over the
# kind / chat type / attendant / team dimensions).
DERIVED = (
    "create table gold.hourly_totals as select instance_id, day, hour, direction, "
    "sum(messages)::bigint as messages, sum(automated_messages)::bigint as automated_messages "
    "from gold.hourly_volume group by all order by instance_id, day, hour",
    "create table gold.daily_totals as select instance_id, day, direction, "
    "sum(messages)::bigint as messages, sum(automated_messages)::bigint as automated_messages "
    "from gold.daily_volume group by all order by instance_id, day",
)
# Each instance's first and last local day with data (messages, conversations or calls).
DATA_DAYS = (
    "select instance_id, min(day), max(day) from (select instance_id, day from gold.daily_totals "
    "union all select instance_id, opened_day from gold.conversation_facts "
    "union all select instance_id, day from gold.calls_daily) group by instance_id"
)


@lru_cache(maxsize=1)
def empty_gold() -> dict[str, pa.Table]:
    """Empty Arrow tables with every gold table's schema (gold SQL run over empty silver)."""
    import tempfile

    from gold.runner import compute, prepare

    with tempfile.TemporaryDirectory() as tmp:
        con = prepare(Lake(root=tmp), engine=None)
        try:
            compute(con)
            return {t: con.sql(f"select * from gold.{t} limit 0").to_arrow_table() for t in GOLD_TABLES}
        finally:
            con.close()


class GoldReader:
    """Thread-safe access to an in-memory DuckDB copy of the gold tables."""

    def __init__(self, lake: Lake, refresh_seconds: float = 2.0, background: bool = True) -> None:
        self.lake = lake
        self.refresh_seconds = refresh_seconds
        self.background = background
        self._lock = threading.Lock()
        self._db: duckdb.DuckDBPyConnection | None = None
        self._arrays: fast.GoldArrays | None = None
        self._versions: dict[str, int | None] = {}
        self._days: dict[str, tuple[date, date]] = {}
        self._thread: threading.Thread | None = None
        self._stop = threading.Event()

    @property
    def fingerprint(self) -> str:
        self._ensure_loaded()
        return "-".join(str(self._versions.get(t, "x")) for t in GOLD_TABLES)

    def versions(self) -> dict[str, int | None]:
        self._ensure_loaded()
        return dict(self._versions)

    def cursor(self) -> duckdb.DuckDBPyConnection:
        """A cursor on the current copy (use one per request; cheap)."""
        self._ensure_loaded()
        assert self._db is not None
        return self._db.cursor()

    def arrays(self) -> fast.GoldArrays:
        """The fast path's numpy copy of the current gold (swapped with the DuckDB copy)."""
        self._ensure_loaded()
        assert self._arrays is not None
        return self._arrays

    def data_days(self, instance_ids: list[str]) -> tuple[date, date] | None:
        """The first and last local day holding data for any of ``instance_ids`` (None: no data)."""
        self._ensure_loaded()
        spans = [self._days[i] for i in instance_ids if i in self._days]
        if not spans:
            return None
        return min(s[0] for s in spans), max(s[1] for s in spans)

    def _current_versions(self) -> dict[str, int | None]:
        return {t: self.lake.version(f"gold/{t}") for t in GOLD_TABLES}

    def refresh(self, force: bool = False) -> bool:
        """Reload gold when any table's version changed (or ``force``); returns whether it reloaded."""
        versions = self._current_versions()
        if not force and self._db is not None and versions == self._versions:
            return False
        started = time.perf_counter()
        db = duckdb.connect(":memory:")
        db.execute("set TimeZone = 'UTC'")
        db.execute("create schema if not exists gold")
        install_macros(db)
        empties = empty_gold()
        for table in GOLD_TABLES:
            version = versions[table]
            source: Any = (
                self.lake.dataset(f"gold/{table}", self.lake.open(f"gold/{table}", version=version))
                if version is not None
                else empties[table]
            )
            db.register("__src", source)
            # Sorted by instance and day so DuckDB's zone maps skip everything else of a query.
            db.execute(f"create table gold.{table} as select * from __src order by {SORT_KEYS[table]}")
            db.unregister("__src")
        for statement in DERIVED:
            db.execute(statement)
        arrays = fast.build(db)
        days = {r[0]: (r[1], r[2]) for r in db.execute(DATA_DAYS).fetchall()}
        with self._lock:
            old, self._db, self._arrays, self._versions, self._days = self._db, db, arrays, versions, days
        if old is not None:
            # Cursors already handed out keep the old database alive until they finish.
            del old
        log.info("gold loaded for metrics", seconds=round(time.perf_counter() - started, 3))
        return True

    def _ensure_loaded(self) -> None:
        if self._db is None:
            with self._lock:
                needs = self._db is None
            if needs:
                self.refresh(force=True)
            if self.background and self._thread is None:
                self._thread = threading.Thread(target=self._poll, name="beazap-gold-refresh", daemon=True)
                self._thread.start()

    def _poll(self) -> None:
        while not self._stop.wait(self.refresh_seconds):
            try:
                self.refresh()
            except Exception as exc:  # keep serving the last good copy
                log.warning("gold refresh failed", error=type(exc).__name__)

    def close(self) -> None:
        self._stop.set()
