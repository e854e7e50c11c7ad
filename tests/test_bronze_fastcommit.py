"""Constant-cost local appends: what they write is a Delta table every reader agrees on."""

from __future__ import annotations

import json
import threading
from datetime import UTC, datetime, timedelta

import duckdb
import pyarrow as pa
import pytest
from deltalake import write_deltalake
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from bronze.fastcommit import LocalBlindAppender, UnsupportedTableError
from bronze.rows import webhook_event_row
from bronze.schema import WEBHOOK_EVENTS, WEBHOOK_EVENTS_PARTITIONS, WEBHOOK_EVENTS_SCHEMA
from bronze.writer import WEBHOOK_EVENTS_TARGET, DeltaAppender
from storage.lake import Lake

BASE = datetime(2026, 3, 2, 12, 0, tzinfo=UTC)


def rows(start: int, n: int, when: datetime = BASE) -> list[tuple[object, ...]]:
    return [
        webhook_event_row(
            receipt_id=f"R{start + i:08d}",
            received_at=when + timedelta(seconds=i),
            instance="inst",
            event="messages.upsert",
            source_ip=None if i % 2 else "10.0.0.1",
            payload=json.dumps({"n": start + i, "text": "olá"}),
        )
        for i in range(n)
    ]


def fast(lake: Lake) -> tuple[LocalBlindAppender, DeltaAppender]:
    appender = DeltaAppender(lake, WEBHOOK_EVENTS_TARGET, app_id="fast")
    appender.ensure_table()
    return LocalBlindAppender(appender.uri, WEBHOOK_EVENTS_SCHEMA, WEBHOOK_EVENTS_PARTITIONS), appender


def test_fast_commits_read_back_identically_everywhere(lake: Lake) -> None:
    blind, appender = fast(lake)
    written = rows(0, 5) + rows(5, 3, BASE + timedelta(days=1))
    data = appender.to_arrow(written)
    v1 = blind.append(data.slice(0, 5), "fast", 1)
    v2 = blind.append(data.slice(5), "fast", 2)
    assert (v1, v2) == (1, 2)
    dt = lake.open(WEBHOOK_EVENTS)
    assert dt.version() == 2
    assert dt.transaction_version("fast") == 2
    table = pa.table(dt.to_pyarrow_table()).sort_by("receipt_id")
    assert table.select(WEBHOOK_EVENTS_SCHEMA.names).to_pylist() == data.sort_by("receipt_id").to_pylist()
    assert sorted(str(d) for d in set(table.column("received_date").to_pylist())) == ["2026-03-02", "2026-03-03"]
    # partition pruning and DuckDB over the Arrow dataset
    ds = dt.to_pyarrow_dataset()
    con = duckdb.connect()
    con.register("bronze", ds)
    assert con.execute("select count(*) from bronze where received_date = DATE '2026-03-03'").fetchone() == (3,)
    # change data feed sees each row once, with its commit version
    cdf = pa.table(dt.load_cdf(starting_version=1))
    assert sorted(cdf.column("_commit_version").to_pylist()) == [1] * 5 + [2] * 3
    # delta-rs can checkpoint and compact what was written
    dt.create_checkpoint()
    dt.optimize.compact()
    assert lake.open(WEBHOOK_EVENTS).to_pyarrow_dataset().count_rows() == 8


def test_fast_and_delta_rs_writers_interleave(lake: Lake) -> None:
    """A fast appender and a plain delta-rs writer appending at once (e.g. an old receiver version)."""
    blind, appender = fast(lake)
    errors: list[BaseException] = []

    def delta_rs_writer() -> None:
        try:
            for b in range(15):
                write_deltalake(lake.uri(WEBHOOK_EVENTS), appender.to_arrow(rows(10_000 + b * 4, 4)), mode="append")
        except BaseException as exc:  # pragma: no cover - reported below
            errors.append(exc)

    thread = threading.Thread(target=delta_rs_writer)
    thread.start()
    for b in range(30):
        blind.append(appender.to_arrow(rows(b * 4, 4)), "fast", b + 1)
    thread.join()
    assert errors == []
    dt = lake.open(WEBHOOK_EVENTS)
    ids = pa.table(dt.to_pyarrow_table(columns=["receipt_id"])).column(0).to_pylist()
    assert len(ids) == len(set(ids)) == 30 * 4 + 15 * 4
    assert dt.version() == 45
    assert dt.transaction_version("fast") == 30


def test_concurrent_metadata_change_stops_fast_path(lake: Lake) -> None:
    blind, appender = fast(lake)
    blind.append(appender.to_arrow(rows(0, 1)), "fast", 1)
    lake.open(WEBHOOK_EVENTS).alter.set_table_properties({"delta.logRetentionDuration": "interval 30 days"})
    with pytest.raises(UnsupportedTableError):
        blind.append(appender.to_arrow(rows(1, 1)), "fast", 2)


def test_appender_falls_back_to_delta_rs_when_the_table_needs_it(lake: Lake) -> None:
    appender = DeltaAppender(lake, WEBHOOK_EVENTS_TARGET, app_id="fb")
    appender.append(rows(0, 2))
    assert appender._fast is not None
    lake.open(WEBHOOK_EVENTS).alter.add_constraint({"has_payload": "payload IS NOT NULL"})
    appender.append(rows(2, 2))  # stale fast appender meets the metadata change: delta-rs takes over
    assert appender.fast_commit is False
    dt = lake.open(WEBHOOK_EVENTS)
    assert dt.transaction_version("fb") == 2
    assert dt.to_pyarrow_dataset().count_rows() == 4


@settings(max_examples=15, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(st.lists(st.tuples(st.integers(0, 3), st.integers(1, 6)), min_size=1, max_size=6))
def test_batches_over_any_days_land_in_their_partitions(lake: Lake, batches: list[tuple[int, int]]) -> None:
    appender = DeltaAppender(lake, WEBHOOK_EVENTS_TARGET, app_id="prop")
    appender.ensure_table()
    before = lake.open(WEBHOOK_EVENTS).to_pyarrow_dataset().count_rows()
    expected = 0
    seen = set()
    for day_offset, n in batches:
        start = len(seen) + before
        batch = rows(start, n, BASE + timedelta(days=day_offset)) + rows(start + n, 1, BASE)
        appender.append(batch)
        expected += n + 1
        seen.update(range(start, start + n + 1))
    table = pa.table(lake.open(WEBHOOK_EVENTS).to_pyarrow_table())
    assert table.num_rows == before + expected
    for r in table.to_pylist():
        assert r["received_date"] == r["received_at"].date()
