"""Group-commit writer: many concurrent requests share one Delta append, each acknowledged after it.

A request calls :meth:`GroupCommitWriter.write` with one row and awaits it. A single flusher task
per process collects rows until ``max_rows`` are waiting or ``max_wait_ms`` passed since the oldest
one arrived, then appends them to the Delta table in one commit (in the lane's own thread, so the event
loop keeps accepting requests meanwhile). Every waiting request is resolved with the commit's
outcome: success, or :class:`LakeUnavailableError` (the receiver answers 503 so the sender retries).

Several processes may append to the same table: Delta resolves append/append races itself, and a
commit that still fails is retried idempotently — each batch carries an app transaction
``(app_id, seq)`` (``CommitProperties.app_transactions``), so after an ambiguous failure the writer
reads the table's transaction version for its app id and only re-commits batches not yet there.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import queue
import socket
import threading
import time
import uuid
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import date
from typing import Any

import pyarrow as pa
from deltalake import CommitProperties, DeltaTable, Transaction, write_deltalake
from deltalake.exceptions import CommitFailedError

from bronze.compaction import compact_partitions
from bronze.fastcommit import LocalBlindAppender, UnsupportedTableError
from bronze.schema import (
    CDF_CONFIG,
    QUARANTINE,
    QUARANTINE_PARTITIONS,
    QUARANTINE_SCHEMA,
    WEBHOOK_EVENTS,
    WEBHOOK_EVENTS_PARTITIONS,
    WEBHOOK_EVENTS_SCHEMA,
)
from core.logging import get_logger
from storage.lake import Lake

log = get_logger(__name__)

# Bounded object-store retries so an unreachable S3 endpoint fails a batch in seconds, not minutes
# (the request is then answered 503 and the sender retries later).
WRITER_STORAGE_OPTIONS = {"max_retries": "2", "retry_timeout": "5s", "timeout": "10s", "connect_timeout": "2s"}


class LakeUnavailableError(Exception):
    """The batch holding this row could not be committed (disk full, S3 down, timeout…)."""


@dataclass(frozen=True)
class BronzeTarget:
    """A bronze table the writer appends to."""

    table: str
    schema: pa.Schema
    partition_by: list[str]
    configuration: dict[str, str | None] = field(default_factory=dict)

    @property
    def columns(self) -> list[str]:
        return list(self.schema.names)


WEBHOOK_EVENTS_TARGET = BronzeTarget(WEBHOOK_EVENTS, WEBHOOK_EVENTS_SCHEMA, WEBHOOK_EVENTS_PARTITIONS, CDF_CONFIG)
QUARANTINE_TARGET = BronzeTarget(QUARANTINE, QUARANTINE_SCHEMA, QUARANTINE_PARTITIONS, CDF_CONFIG)

# (rows, seconds, ok) after every commit attempt; the receiver feeds Prometheus with it.
CommitObserver = Callable[[str, int, float, bool], None]


@dataclass
class WriterStats:
    """Counters of one writer (for /readyz and tests)."""

    commits: int = 0
    rows: int = 0
    failed_batches: int = 0
    conflict_retries: int = 0
    compactions: int = 0
    last_success_at: float | None = None
    last_failure_at: float | None = None
    last_error: str | None = None

    @property
    def healthy(self) -> bool:
        """False when the most recent commit attempt failed."""
        if self.last_failure_at is None:
            return True
        return self.last_success_at is not None and self.last_success_at > self.last_failure_at


def new_app_id(prefix: str = "beazap-receiver") -> str:
    """A unique Delta app id for one writer (host, pid and a random suffix)."""
    return f"{prefix}-{socket.gethostname()}-{os.getpid()}-{uuid.uuid4().hex[:8]}"


class DeltaAppender:
    """Synchronous, idempotent batch appends to one bronze table (used from the flusher thread)."""

    def __init__(
        self,
        lake: Lake,
        target: BronzeTarget,
        *,
        app_id: str | None = None,
        attempts: int = 4,
        fast_commit: bool = True,
        fsync: bool = True,
    ) -> None:
        if lake.is_s3:
            lake = Lake(lake.root, {**WRITER_STORAGE_OPTIONS, **lake.storage_options})
        self.lake = lake
        self.target = target
        self.app_id = app_id or new_app_id()
        self.attempts = attempts
        self._dt: DeltaTable | None = None
        # Constant-cost local appends (bronze.fastcommit); S3 and unusual tables use delta-rs.
        self.fast_commit = fast_commit and not lake.is_s3
        self.fsync = fsync
        self._fast: LocalBlindAppender | None = None
        self._seq = 0
        self._lock = threading.Lock()
        self.conflict_retries = 0

    @property
    def uri(self) -> str:
        return self.lake.uri(self.target.table)

    def ensure_table(self) -> DeltaTable:
        """Open (creating if needed) the target table."""
        if self._dt is None:
            self.lake.create(
                self.target.table,
                self.target.schema,
                partition_by=self.target.partition_by,
                configuration=self.target.configuration or None,
            )
            self._dt = self.lake.open(self.target.table)
        return self._dt

    def to_arrow(self, rows: Sequence[Sequence[Any]]) -> pa.Table:
        columns = list(zip(*rows, strict=True)) if rows else [[] for _ in self.target.columns]
        arrays = [pa.array(col, type=f.type) for col, f in zip(columns, self.target.schema, strict=True)]
        return pa.Table.from_arrays(arrays, schema=self.target.schema)

    def append(self, rows: Sequence[Sequence[Any]]) -> int:
        """Append ``rows`` (tuples in schema order) as one commit; returns the commit's app version.

        Retries commit conflicts and transient errors; never commits the same batch twice.
        Raises :class:`LakeUnavailableError` when the batch could not be committed.
        """
        with self._lock:
            self._seq += 1
            seq = self._seq
            data = self.to_arrow(rows)
            last_exc: Exception | None = None
            for attempt in range(self.attempts):
                try:
                    if attempt and self._already_committed(seq):
                        return seq
                    self._commit(self.ensure_table(), data, seq)
                    return seq
                except CommitFailedError as exc:
                    self.conflict_retries += 1
                    last_exc = exc
                except Exception as exc:  # IO errors, S3 down, table unreadable…
                    last_exc = exc
                self._dt = None  # reload the snapshot before the next attempt
                self._fast = None
                time.sleep(min(0.05 * (2**attempt), 0.5))
            try:
                if self._already_committed(seq):
                    return seq
            except Exception:  # noqa: S110 — the original error below is the one to report
                pass
            raise LakeUnavailableError(f"{type(last_exc).__name__}: {last_exc}") from last_exc

    def _commit(self, dt: DeltaTable, data: pa.Table, seq: int) -> None:
        """One append commit tagged with this writer's app transaction ``(app_id, seq)``."""
        if self.fast_commit:
            try:
                if self._fast is None:
                    self._fast = LocalBlindAppender(
                        self.uri, self.target.schema, self.target.partition_by, fsync=self.fsync
                    )
                self._fast.append(data, self.app_id, seq)
                return
            except UnsupportedTableError as exc:
                log.warning("bronze fast commit disabled", table=self.target.table, reason=str(exc))
                self.fast_commit = False
                self._fast = None
        write_deltalake(
            dt,
            data,
            mode="append",
            commit_properties=CommitProperties(max_commit_retries=50, app_transactions=[Transaction(self.app_id, seq)]),
        )

    def _already_committed(self, seq: int) -> bool:
        """Whether batch ``seq`` of this app id is already in the table (ambiguous failure)."""
        self._dt = None  # fresh snapshot: fast commits do not advance the cached one
        version = self.ensure_table().transaction_version(self.app_id)
        return version is not None and version >= seq


class _CommitThread:
    """One lane's own commit thread: batches in through a queue, outcomes back on the event loop.

    Not ``asyncio.to_thread``: ``ThreadPoolExecutor.submit`` takes a lock shared by every executor
    of the process, which the commit thread's own fsync pool also takes, and the profile showed the
    event loop stalled on it (benchmarks/RESULTS.md, ingest).
    """

    def __init__(self, lane: DeltaAppender, loop: asyncio.AbstractEventLoop, name: str) -> None:
        self._loop = loop
        self._queue: queue.SimpleQueue[tuple[list[tuple[Any, ...]], asyncio.Future[None]] | None] = queue.SimpleQueue()
        self._thread = threading.Thread(target=self._serve, args=(lane,), name=name, daemon=True)
        self._thread.start()

    def submit(self, rows: list[tuple[Any, ...]]) -> asyncio.Future[None]:
        """Commit ``rows`` on this lane; the future is resolved on the loop with the outcome."""
        future: asyncio.Future[None] = self._loop.create_future()
        self._queue.put((rows, future))
        return future

    async def close(self) -> None:
        """Let the thread finish what it was given, then end it."""
        self._queue.put(None)
        await asyncio.to_thread(self._thread.join)

    def _serve(self, lane: DeltaAppender) -> None:
        while (item := self._queue.get()) is not None:
            rows, future = item
            error: BaseException | None = None
            try:
                lane.append(rows)
            except BaseException as exc:  # reported to the waiting flush, never lost in this thread
                error = exc
            with contextlib.suppress(RuntimeError):  # the loop is already closed: nobody waits
                self._loop.call_soon_threadsafe(_settle, future, error)


def _settle(future: asyncio.Future[None], error: BaseException | None) -> None:
    if future.done():
        return
    if error is None:
        future.set_result(None)
    else:
        future.set_exception(error)


@dataclass(slots=True)
class _Pending:
    row: tuple[Any, ...]
    future: asyncio.Future[None]
    arrived: float


class GroupCommitWriter:
    """Asyncio front of :class:`DeltaAppender` lanes: concurrent ``write`` calls share commits.

    Flush policy: a batch starts as soon as a lane is free and either nothing is being committed
    (an idle writer adds no latency), ``max_rows`` rows are waiting, or the oldest waiting row is
    ``max_wait_ms`` old. With ``lanes`` > 1, a new batch may be committed while the previous one is
    still in flight (each lane has its own app id, so idempotent retries stay per lane); under load
    rows that arrive during a commit form the next batch, so commits grow with the load.
    """

    def __init__(
        self,
        lake: Lake,
        target: BronzeTarget = WEBHOOK_EVENTS_TARGET,
        *,
        max_rows: int = 2000,
        max_wait_ms: float = 5,
        lanes: int = 2,
        timeout_s: float = 20.0,
        observer: CommitObserver | None = None,
        app_id: str | None = None,
        compact_every: int = 50,
        compact_min_interval_s: float = 5.0,
        fast_commit: bool = True,
        fsync: bool = True,
    ) -> None:
        if max_rows < 1 or lanes < 1:
            raise ValueError("max_rows and lanes must be >= 1")
        base = app_id or new_app_id()
        self.lanes = [
            DeltaAppender(lake, target, app_id=f"{base}-{k}", fast_commit=fast_commit, fsync=fsync)
            for k in range(lanes)
        ]
        self.target = target
        self.max_rows = max_rows
        self.max_wait = max(0.0, max_wait_ms / 1000)
        self.timeout_s = timeout_s
        self.observer = observer
        self.stats = WriterStats()
        self._app_id = base
        self._pending: list[_Pending] = []
        self._free: list[DeltaAppender] = []
        self._committers: dict[DeltaAppender, _CommitThread] = {}
        self._inflight: set[asyncio.Task[None]] = set()
        self._signal: asyncio.Event | None = None
        self._task: asyncio.Task[None] | None = None
        self._closing = False
        self.compact_every = compact_every
        self.compact_min_interval_s = compact_min_interval_s
        self._last_compaction: float | None = None  # monotonic start of the last auto-compaction
        self._commits_since_compaction = 0
        self._days_written: set[date] = set()
        self._compaction: asyncio.Task[None] | None = None
        self._date_index = target.schema.get_field_index(target.partition_by[0]) if target.partition_by else -1

    @property
    def app_id(self) -> str:
        """Base app id; lane ``k`` commits as ``{app_id}-{k}``."""
        return self._app_id

    @property
    def appender(self) -> DeltaAppender:
        return self.lanes[0]

    # --- lifecycle --------------------------------------------------------------------------------
    async def start(self) -> None:
        """Start the flusher task and try to open the table (failures are retried on first flush)."""
        self._signal = asyncio.Event()
        self._closing = False
        self._free = list(reversed(self.lanes))
        loop = asyncio.get_running_loop()
        name = f"bronze-commit:{self.target.table}"
        self._committers = {lane: _CommitThread(lane, loop, f"{name}:{k}") for k, lane in enumerate(self.lanes)}
        self._task = asyncio.create_task(self._run(), name=f"bronze-flusher:{self.target.table}")
        self._task.add_done_callback(self._flusher_ended)
        try:
            await asyncio.to_thread(self.appender.ensure_table)
        except Exception as exc:
            log.warning("bronze table not writable at start", table=self.target.table, error=type(exc).__name__)

    async def stop(self) -> None:
        """Flush what is waiting, wait for commits in flight, then stop the flusher."""
        if self._task is None:
            return
        self._closing = True
        assert self._signal is not None
        self._signal.set()
        await self._task
        self._task = None
        for committer in self._committers.values():
            await committer.close()
        self._committers = {}
        if self._compaction is not None:
            await self._compaction
            self._compaction = None

    # --- requests ---------------------------------------------------------------------------------
    async def write(self, row: tuple[Any, ...]) -> None:
        """Queue ``row`` (a tuple in the target schema's column order) and wait until committed.

        Raises :class:`LakeUnavailableError` when its batch failed or did not commit within
        ``timeout_s`` (the row may still land later; bronze keeps duplicates, silver dedupes).
        """
        if self._task is None or self._closing:
            raise LakeUnavailableError("writer is not running")
        assert self._signal is not None
        future: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        self._pending.append(_Pending(row, future, time.monotonic()))
        if len(self._pending) == 1 or len(self._pending) >= self.max_rows:
            self._signal.set()
        # The flusher fails rows older than ``timeout_s`` (one deadline per batch, not a timer per
        # request: :meth:`_expire`); a cancelled wait is harmless, the flusher skips done futures.
        await future

    # --- flusher ----------------------------------------------------------------------------------
    def _flusher_ended(self, task: asyncio.Task[None]) -> None:
        """Nothing may wait forever: if the flusher died, fail whatever is still waiting."""
        if not task.cancelled() and task.exception() is not None:
            log.error("bronze flusher stopped", table=self.target.table, error=type(task.exception()).__name__)
        self._closing = True
        self._fail(self._pending, LakeUnavailableError("writer stopped"))
        self._pending = []

    @staticmethod
    def _fail(batch: list[_Pending], error: LakeUnavailableError) -> None:
        for pending in batch:
            if not pending.future.done():
                pending.future.set_exception(error)
                pending.future.exception()  # mark retrieved: a cancelled request no longer awaits it

    def _expire(self, now: float) -> None:
        """Fail the waiting rows that are ``timeout_s`` old (every lane busy for that long)."""
        if self._pending and now - self._pending[0].arrived >= self.timeout_s:
            old = [p for p in self._pending if now - p.arrived >= self.timeout_s]
            self._pending = [p for p in self._pending if now - p.arrived < self.timeout_s]
            self._fail(old, LakeUnavailableError(f"commit not done within {self.timeout_s:g}s"))

    async def _run(self) -> None:
        assert self._signal is not None
        while True:
            self._signal.clear()
            self._expire(time.monotonic())
            if not self._pending:
                if self._closing:
                    if not self._inflight:
                        return
                    await asyncio.wait(self._inflight)
                    continue
                await self._signal.wait()
                continue
            if not self._free:  # a lane finishing sets the signal; the oldest row's deadline wakes us too
                deadline = self._pending[0].arrived + self.timeout_s - time.monotonic()
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(self._signal.wait(), max(deadline, 0.001))
                continue
            linger = self._pending[0].arrived + self.max_wait - time.monotonic()
            ready = self._closing or not self._inflight or len(self._pending) >= self.max_rows or linger <= 0
            if not ready:
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(self._signal.wait(), linger)
                continue
            batch, self._pending = self._pending[: self.max_rows], self._pending[self.max_rows :]
            lane = self._free.pop()
            task = asyncio.create_task(self._flush(lane, batch))
            self._inflight.add(task)
            task.add_done_callback(self._inflight.discard)

    async def _flush(self, lane: DeltaAppender, batch: list[_Pending]) -> None:
        started = time.perf_counter()
        error: LakeUnavailableError | None = None
        commit = self._committers[lane].submit([p.row for p in batch])
        try:
            # The batch's deadline is its oldest row's: past it, answer 503 and let the commit finish
            # in the background (the rows may still land; bronze keeps duplicates, silver dedupes).
            deadline = batch[0].arrived + self.timeout_s - time.monotonic()
            done, _ = await asyncio.wait({commit}, timeout=max(deadline, 0.001))
            if not done:
                self._fail(batch, LakeUnavailableError(f"commit not done within {self.timeout_s:g}s"))
            await commit
        except Exception as exc:
            error = exc if isinstance(exc, LakeUnavailableError) else LakeUnavailableError(str(exc))
        finally:
            self._free.append(lane)
            assert self._signal is not None
            self._signal.set()
        elapsed = time.perf_counter() - started
        now = time.time()
        self.stats.conflict_retries = sum(a.conflict_retries for a in self.lanes)
        if error is None:
            self.stats.commits += 1
            self.stats.rows += len(batch)
            self.stats.last_success_at = now
            self._maybe_compact(batch)
        else:
            self.stats.failed_batches += 1
            self.stats.last_failure_at = now
            self.stats.last_error = str(error)[:300]
            log.error("bronze commit failed", table=self.target.table, rows=len(batch), error=type(error).__name__)
        if self.observer is not None:
            self.observer(self.target.table, len(batch), elapsed, error is None)
        if error is not None:
            self._fail(batch, error)
            return
        for pending in batch:
            if not pending.future.done():
                pending.future.set_result(None)

    # --- auto-compaction ----------------------------------------------------------------------
    def _maybe_compact(self, batch: list[_Pending]) -> None:
        if self.compact_every <= 0 or self._date_index < 0 or self.appender.lake.is_s3:
            return
        self._commits_since_compaction += 1
        self._days_written.update(p.row[self._date_index] for p in batch)  # type: ignore[misc]
        busy = self._compaction is not None and not self._compaction.done()
        if self._commits_since_compaction < self.compact_every or busy:
            return
        # One compaction costs about the same whatever the commits since the last one (open the
        # table, rewrite the small files, write a checkpoint: ~0.1–0.3 s of CPU here), so under load
        # a per-commit period alone would spend most of a core compacting (benchmarks/RESULTS.md).
        now = time.monotonic()
        if self._last_compaction is not None and now - self._last_compaction < self.compact_min_interval_s:
            return
        self._last_compaction = now
        days, self._days_written = self._days_written, set()
        self._commits_since_compaction = 0
        self._compaction = asyncio.create_task(self._compact(days), name=f"bronze-compaction:{self.target.table}")

    async def _compact(self, days: set[date]) -> None:
        started = time.perf_counter()
        try:
            result = await asyncio.to_thread(
                compact_partitions, self.appender.lake, self.target.table, self.target.partition_by[0], days
            )
        except Exception as exc:  # another process compacting the same partition, lake hiccup…
            log.debug("bronze compaction skipped", table=self.target.table, error=type(exc).__name__)
            self._days_written |= days
            return
        self.stats.compactions += 1
        log.debug(
            "bronze compacted", table=self.target.table, seconds=round(time.perf_counter() - started, 3), **result
        )
