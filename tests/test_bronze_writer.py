"""Bronze landing: receipt ids, the group-commit writer, idempotent appends, concurrent writers."""

from __future__ import annotations

import asyncio
import json
import threading
import time
from datetime import UTC, datetime
from pathlib import Path

import pyarrow as pa
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from bronze.receipts import ReceiptIdGenerator, new_receipt_id, receipt_time
from bronze.rows import payload_hash, webhook_event_row
from bronze.schema import QUARANTINE_SCHEMA, WEBHOOK_EVENTS, WEBHOOK_EVENTS_SCHEMA
from bronze.writer import (
    QUARANTINE_TARGET,
    WEBHOOK_EVENTS_TARGET,
    DeltaAppender,
    GroupCommitWriter,
    LakeUnavailableError,
)
from storage.lake import Lake


def row(i: int, when: datetime | None = None) -> tuple[object, ...]:
    when = when or datetime.now(UTC)
    return webhook_event_row(
        receipt_id=f"R{i:08d}",
        received_at=when,
        instance="inst",
        event="messages.upsert",
        source_ip="127.0.0.1",
        payload=json.dumps({"event": "messages.upsert", "instance": "inst", "data": {"n": i}}),
    )


def receipts(lake: Lake) -> list[str]:
    return pa.table(lake.open(WEBHOOK_EVENTS).to_pyarrow_table(columns=["receipt_id"])).column(0).to_pylist()


# --- receipt ids ----------------------------------------------------------------------------------


@settings(max_examples=200, deadline=None)
@given(st.lists(st.integers(min_value=0, max_value=2**47), min_size=1, max_size=50))
def test_receipt_ids_are_strictly_increasing_and_decode_to_their_time(times: list[int]) -> None:
    gen = ReceiptIdGenerator()
    ids = [gen.new(ms) for ms in sorted(times)]
    assert ids == sorted(ids)
    assert len(set(ids)) == len(ids)
    assert all(len(i) == 26 for i in ids)
    # Each id encodes at least its own millisecond (equal ms may carry over on overflow only).
    for ms, rid in zip(sorted(times), ids, strict=True):
        assert receipt_time(rid) >= datetime.fromtimestamp(ms / 1000, tz=UTC)


def test_receipt_ids_stay_ordered_when_the_clock_steps_back() -> None:
    gen = ReceiptIdGenerator()
    first = gen.new(1_700_000_000_500)
    second = gen.new(1_700_000_000_100)
    assert second > first


def test_receipt_ids_unique_across_threads() -> None:
    out: list[str] = []

    def work() -> None:
        out.extend(new_receipt_id() for _ in range(2000))

    threads = [threading.Thread(target=work) for _ in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert len(set(out)) == 8000


def test_payload_hash_is_sha256_of_utf8() -> None:
    import hashlib

    text = '{"text":"olá"}'
    assert payload_hash(text) == hashlib.sha256(text.encode()).hexdigest() == payload_hash(text.encode())


# --- the appender ---------------------------------------------------------------------------------


def test_appender_creates_the_table_with_contract_schema_partitions_and_cdf(lake: Lake) -> None:
    appender = DeltaAppender(lake, WEBHOOK_EVENTS_TARGET)
    assert appender.append([row(1), row(2)]) == 1
    dt = lake.open(WEBHOOK_EVENTS)
    assert dt.metadata().partition_columns == ["received_date"]
    assert dt.metadata().configuration.get("delta.enableChangeDataFeed") == "true"
    assert pa.schema(dt.schema().to_arrow()).names == WEBHOOK_EVENTS_SCHEMA.names
    assert sorted(receipts(lake)) == ["R00000001", "R00000002"]
    cdf = pa.table(dt.load_cdf(starting_version=0))
    assert cdf.num_rows == 2


def test_appender_records_its_app_transaction(lake: Lake) -> None:
    appender = DeltaAppender(lake, WEBHOOK_EVENTS_TARGET, app_id="writer-a")
    for i in range(3):
        appender.append([row(i)])
    assert lake.open(WEBHOOK_EVENTS).transaction_version("writer-a") == 3
    assert appender._already_committed(3)
    assert not appender._already_committed(4)


def test_appender_resumes_after_an_ambiguous_failure_without_duplicating(lake: Lake) -> None:
    """Commit lands but the writer thinks it failed: the retry finds (app_id, seq) and does not re-append."""
    appender = DeltaAppender(lake, WEBHOOK_EVENTS_TARGET, app_id="writer-b")
    appender.append([row(0)])

    class LostAck(DeltaAppender):
        """Delivers the commit, then loses the answer once (like a timeout after an S3 PUT)."""

        lost = 0

        def _commit(self, dt, data, seq):  # type: ignore[no-untyped-def]
            super()._commit(dt, data, seq)
            if not self.lost:
                self.lost += 1
                raise OSError("connection reset after the commit")

    flaky = LostAck(lake, WEBHOOK_EVENTS_TARGET, app_id="writer-b")
    flaky._seq = 1  # this writer's next batch is seq 2
    assert flaky.append([row(1)]) == 2  # committed once, answer lost, retry sees (writer-b, 2)
    assert flaky.lost == 1
    flaky.append([row(2)])
    ids = receipts(lake)
    assert sorted(ids) == ["R00000000", "R00000001", "R00000002"]


def test_appender_raises_lake_unavailable_when_the_root_is_not_writable(tmp_path: Path) -> None:
    blocker = tmp_path / "file"
    blocker.write_text("x")
    appender = DeltaAppender(Lake(str(blocker / "lake")), WEBHOOK_EVENTS_TARGET, attempts=2)
    with pytest.raises(LakeUnavailableError):
        appender.append([row(1)])


def test_concurrent_appenders_on_one_table_lose_nothing(lake: Lake) -> None:
    """Three writers (threads, separate app ids) appending at once: every batch exactly once."""
    DeltaAppender(lake, WEBHOOK_EVENTS_TARGET).ensure_table()
    errors: list[BaseException] = []

    def writer(w: int) -> None:
        appender = DeltaAppender(lake, WEBHOOK_EVENTS_TARGET, app_id=f"w{w}")
        try:
            for b in range(15):
                appender.append([row(w * 10_000 + b * 10 + k) for k in range(5)])
        except BaseException as exc:  # pragma: no cover - reported below
            errors.append(exc)

    threads = [threading.Thread(target=writer, args=(w,)) for w in range(3)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert errors == []
    ids = receipts(lake)
    assert len(ids) == len(set(ids)) == 3 * 15 * 5
    dt = lake.open(WEBHOOK_EVENTS)
    assert [dt.transaction_version(f"w{w}") for w in range(3)] == [15, 15, 15]


# --- the group-commit writer ----------------------------------------------------------------------


def test_group_commit_flushes_on_max_rows(lake: Lake) -> None:
    """With a long wait, batches still flush as soon as max_rows are waiting."""
    batches: list[int] = []

    async def main() -> None:
        writer = GroupCommitWriter(
            lake, max_rows=10, max_wait_ms=60_000, observer=lambda _t, n, _s, _ok: batches.append(n)
        )
        await writer.start()
        started = time.monotonic()
        await asyncio.gather(*(writer.write(row(i)) for i in range(30)))
        assert time.monotonic() - started < 30
        await writer.stop()

    asyncio.run(main())
    assert batches == [10, 10, 10]
    assert len(receipts(lake)) == 30


def test_idle_writer_flushes_at_once_and_busy_writer_lingers(lake: Lake) -> None:
    """Idle: a lone row is committed without waiting. While a commit is in flight, a second lane
    starts only once the oldest waiting row is max_wait_ms old (or max_rows are waiting)."""
    batches: list[int] = []

    async def main() -> None:
        writer = GroupCommitWriter(
            lake, max_rows=1000, max_wait_ms=10_000, lanes=2, observer=lambda _t, n, _s, _ok: batches.append(n)
        )
        await writer.start()
        started = time.monotonic()
        await writer.write(row(1))
        assert time.monotonic() - started < 5  # far below the 10 s linger
        first = asyncio.create_task(writer.write(row(2)))
        await asyncio.sleep(0)  # row 2's commit is now in flight
        rest = [asyncio.create_task(writer.write(row(3 + i))) for i in range(5)]
        await asyncio.gather(first, *rest)
        await writer.stop()

    asyncio.run(main())
    assert batches == [1, 1, 5]  # rows 3..7 waited for the busy lane instead of a second commit
    assert len(receipts(lake)) == 7


def test_lanes_commit_in_parallel_with_their_own_app_ids(lake: Lake) -> None:
    async def main() -> None:
        writer = GroupCommitWriter(lake, max_rows=5, max_wait_ms=0, lanes=3, app_id="lanes")
        await writer.start()
        await asyncio.gather(*(writer.write(row(i)) for i in range(60)))
        await writer.stop()

    asyncio.run(main())
    dt = lake.open(WEBHOOK_EVENTS)
    versions = [dt.transaction_version(f"lanes-{k}") or 0 for k in range(3)]
    assert sum(versions) == 12  # 60 rows / 5 per batch, each batch once
    assert sorted(receipts(lake)) == sorted(f"R{i:08d}" for i in range(60))


def test_writer_compacts_the_partitions_it_writes(lake: Lake) -> None:
    async def main() -> GroupCommitWriter:
        writer = GroupCommitWriter(lake, max_rows=1, max_wait_ms=0, lanes=1, compact_every=10)
        await writer.start()
        for i in range(25):
            await writer.write(row(i))
        await writer.stop()
        return writer

    writer = asyncio.run(main())
    assert writer.stats.compactions >= 1
    dt = lake.open(WEBHOOK_EVENTS)
    assert len(dt.file_uris()) < 25
    assert sorted(receipts(lake)) == sorted(f"R{i:08d}" for i in range(25))
    # compaction commits carry no data change: the change feed still shows each row once
    cdf = pa.table(dt.load_cdf(starting_version=0))
    assert cdf.num_rows == 25


def test_group_commit_shares_commits_between_concurrent_writes(lake: Lake) -> None:
    async def main() -> None:
        writer = GroupCommitWriter(lake, max_rows=500, max_wait_ms=10)
        await writer.start()

        async def burst(start: int) -> None:
            await asyncio.gather(*(writer.write(row(start + i)) for i in range(50)))

        await asyncio.gather(*(burst(k * 100) for k in range(6)))
        await writer.stop()
        assert writer.stats.rows == 300
        assert writer.stats.commits <= 30

    asyncio.run(main())
    assert len(set(receipts(lake))) == 300


def test_stop_flushes_waiting_rows(lake: Lake) -> None:
    async def main() -> None:
        writer = GroupCommitWriter(lake, max_rows=1000, max_wait_ms=60_000)
        await writer.start()
        pending = [asyncio.create_task(writer.write(row(i))) for i in range(5)]
        await asyncio.sleep(0)  # let them enqueue
        await writer.stop()
        await asyncio.gather(*pending)
        with pytest.raises(LakeUnavailableError):
            await writer.write(row(99))

    asyncio.run(main())
    assert len(receipts(lake)) == 5


def test_failed_batch_fails_every_waiting_request(tmp_path: Path) -> None:
    blocker = tmp_path / "file"
    blocker.write_text("x")
    lake = Lake(str(blocker / "lake"))

    async def main() -> None:
        writer = GroupCommitWriter(lake, max_rows=100, max_wait_ms=5)
        await writer.start()
        results = await asyncio.gather(*(writer.write(row(i)) for i in range(4)), return_exceptions=True)
        await writer.stop()
        assert all(isinstance(r, LakeUnavailableError) for r in results)
        assert not writer.stats.healthy
        assert writer.stats.failed_batches >= 1

    asyncio.run(main())


def test_quarantine_target(lake: Lake) -> None:
    from bronze.rows import quarantine_row

    appender = DeltaAppender(lake, QUARANTINE_TARGET)
    raw = b"\xff not utf-8 {"
    appender.append(
        [
            quarantine_row(
                receipt_id="Q1",
                received_at=datetime.now(UTC),
                instance=None,
                event=None,
                source_ip=None,
                reason="missing_data",
                body=raw,
            )
        ]
    )
    table = pa.table(lake.open("bronze/quarantine").to_pyarrow_table())
    assert table.schema.names == QUARANTINE_SCHEMA.names
    assert table.column("body").to_pylist() == [raw]


def test_concurrent_compactions_are_serialized_and_never_duplicate_rows(lake: Lake) -> None:
    """delta-rs lets two concurrent optimizes both commit (duplicating rows): the lock prevents it."""
    from bronze.compaction import CompactionBusyError, compact_partitions, compaction_lock

    appender = DeltaAppender(lake, WEBHOOK_EVENTS_TARGET)
    day = datetime(2026, 3, 2, 12, tzinfo=UTC)
    for i in range(30):
        appender.append([row(i, day)])
    with compaction_lock(lake, WEBHOOK_EVENTS), pytest.raises(CompactionBusyError):
        compact_partitions(lake, WEBHOOK_EVENTS, "received_date", [day.date()])
    outcomes: list[str] = []
    barrier = threading.Barrier(2)

    def compact() -> None:
        barrier.wait()
        try:
            compact_partitions(lake, WEBHOOK_EVENTS, "received_date", [day.date()])
            outcomes.append("done")
        except CompactionBusyError:
            outcomes.append("busy")

    threads = [threading.Thread(target=compact) for _ in range(2)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert "done" in outcomes
    ids = receipts(lake)
    assert len(ids) == len(set(ids)) == 30


def test_auto_compaction_waits_its_minimum_interval(lake: Lake) -> None:
    """Under load a commit period alone would compact many times a second; the interval bounds it."""

    async def main(min_interval: float) -> GroupCommitWriter:
        writer = GroupCommitWriter(
            lake, max_rows=1, max_wait_ms=0, lanes=1, compact_every=3, compact_min_interval_s=min_interval
        )
        await writer.start()
        for i in range(12):
            await writer.write(row(i))
            if writer._compaction is not None:
                await writer._compaction  # let each compaction finish, so only the interval can skip one
        await writer.stop()
        return writer

    assert asyncio.run(main(3600.0)).stats.compactions == 1
    assert asyncio.run(main(0.0)).stats.compactions == 4


def test_commit_slower_than_timeout_answers_every_waiting_row(lake: Lake) -> None:
    """A stuck commit fails its batch and the rows queued behind it (no lane free) at their deadline."""
    release = threading.Event()

    async def main() -> None:
        writer = GroupCommitWriter(lake, max_rows=2, max_wait_ms=0, lanes=1, timeout_s=0.3)
        real_append = writer.lanes[0].append

        def stuck_append(rows: list[tuple[object, ...]]) -> int:
            release.wait(30)
            return real_append(rows)

        writer.lanes[0].append = stuck_append  # type: ignore[method-assign]
        await writer.start()
        started = time.monotonic()
        first = asyncio.create_task(writer.write(row(0)))  # the batch in flight
        await asyncio.sleep(0)
        queued = [asyncio.create_task(writer.write(row(i))) for i in (1, 2)]  # waiting for the lane
        results = await asyncio.gather(first, *queued, return_exceptions=True)
        elapsed = time.monotonic() - started
        assert all(isinstance(r, LakeUnavailableError) for r in results), results
        assert 0.25 <= elapsed < 10
        release.set()
        await writer.stop()

    try:
        asyncio.run(main())
    finally:
        release.set()
    # the stuck commit still finished in the background: the row may land, never twice
    assert receipts(lake) == ["R00000000"]
