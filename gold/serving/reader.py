"""The metrics reader: the current gold serving store, opened read-only and swapped on change.

At first use the reader opens the serving store of the current gold versions (``gold.serving.store``:
a DuckDB file and memory-mapped numpy arrays, shared by every worker on the node; built once, under a
lock, when missing). A background thread checks the tables' Delta versions every
``gold_refresh_seconds`` and, when any changed, opens the new store (building it if the gold build
did not) and swaps it in atomically; requests in flight keep the old one.
:attr:`GoldReader.fingerprint` (the versions) is part of every cache key, so a rebuild of gold
invalidates cached answers. The store holds the ``gold.stats`` macros, so the serving SQL
(``gold.serving.queries``) names the same rules as the gold build, and each instance's first and
last day with data (:meth:`GoldReader.data_days`).
"""

from __future__ import annotations

import threading
import time
from datetime import date
from pathlib import Path

import duckdb

from core.logging import get_logger
from gold.runner import GOLD_TABLES
from gold.serving import fast, store
from storage.lake import Lake

log = get_logger(__name__)


class GoldReader:
    """Thread-safe access to the current gold serving store."""

    def __init__(
        self, lake: Lake, refresh_seconds: float = 2.0, background: bool = True, root: Path | None = None
    ) -> None:
        self.lake = lake
        self.refresh_seconds = refresh_seconds
        self.background = background
        self.root = root or store.default_root(lake)
        self._lock = threading.Lock()
        self._store: store.ServingStore | None = None
        self._versions: dict[str, int | None] = {}
        self._thread: threading.Thread | None = None
        self._stop = threading.Event()

    @property
    def fingerprint(self) -> str:
        self._ensure_loaded()
        return "-".join(str(self._versions.get(t, "x")) for t in GOLD_TABLES)

    def versions(self) -> dict[str, int | None]:
        self._ensure_loaded()
        return dict(self._versions)

    def _current(self) -> store.ServingStore:
        self._ensure_loaded()
        current = self._store
        assert current is not None
        return current

    def cursor(self) -> duckdb.DuckDBPyConnection:
        """A cursor on the current store (use one per request; cheap)."""
        return self._current().db.cursor()

    def arrays(self) -> fast.GoldArrays:
        """The fast path's arrays of the current store (swapped with its DuckDB file)."""
        return self._current().arrays

    def data_days(self, instance_ids: list[str]) -> tuple[date, date] | None:
        """The first and last local day holding data for any of ``instance_ids`` (None: no data)."""
        days = self._current().days
        spans = [days[i] for i in instance_ids if i in days]
        if not spans:
            return None
        return min(s[0] for s in spans), max(s[1] for s in spans)

    def _current_versions(self) -> dict[str, int | None]:
        return {t: self.lake.version(f"gold/{t}") for t in GOLD_TABLES}

    def refresh(self, force: bool = False) -> bool:
        """Open the store of the current versions when any changed (or ``force``); returns whether it did."""
        versions = self._current_versions()
        if not force and self._store is not None and versions == self._versions:
            return False
        started = time.perf_counter()
        opened = self._open(versions)
        with self._lock:
            old, self._store, self._versions = self._store, opened, versions
        if old is not None:
            # Cursors already handed out keep the old connection alive until they finish.
            del old
        log.info("gold serving store opened", seconds=round(time.perf_counter() - started, 3))
        return True

    def _open(self, versions: dict[str, int | None]) -> store.ServingStore:
        """Open (building if needed) the store of ``versions``. Another process may publish a newer store
        and remove this one between the build and the open: then the current versions are read again."""
        for attempt in range(3):
            folder = store.ensure(self.lake, versions, self.root)
            try:
                return store.open_store(folder)
            except (OSError, duckdb.Error):
                if attempt == 2 or folder.exists():
                    raise
                versions.update(self._current_versions())
        raise AssertionError("unreachable")

    def _ensure_loaded(self) -> None:
        if self._store is None:
            with self._lock:
                needs = self._store is None
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
