"""Reading bronze's change data by commit path: the same rows as delta-rs' change data feed, and no
"gap" refusals while other writers append (the projector's stall measured by benchmarks/soak.py)."""

from __future__ import annotations

import threading
from pathlib import Path

import pyarrow as pa
from deltalake import DeltaTable, write_deltalake

from bronze.fastcommit import LocalBlindAppender
from storage import log_tail
from storage.lake import Lake

SCHEMA = pa.schema([("k", pa.int64()), ("p", pa.string())])


def _table(tmp_path: Path) -> tuple[Lake, str]:
    lake = Lake(str(tmp_path / "lake"))
    write_deltalake(
        lake.uri("bronze/t"),
        SCHEMA.empty_table(),
        partition_by=["p"],
        configuration={"delta.enableChangeDataFeed": "true"},
    )
    return lake, "bronze/t"


def _keys(data: pa.Table) -> list[tuple[int, int]]:
    return sorted(zip(data["k"].to_pylist(), data["_commit_version"].to_pylist(), strict=True))


def test_inserted_rows_equal_the_change_data_feed(tmp_path: Path) -> None:
    lake, table = _table(tmp_path)
    uri = lake.uri(table)
    for i in range(6):
        write_deltalake(
            uri, pa.table({"k": [i, 100 + i], "p": ["a" if i % 2 else "b"] * 2}, schema=SCHEMA), mode="append"
        )
    DeltaTable(uri).optimize.compact()  # dataChange=false: no change rows
    DeltaTable(uri).delete("k = 3")  # rewrites a file: change data files with a delete, no insert
    write_deltalake(uri, pa.table({"k": [7], "p": ["a"]}, schema=SCHEMA), mode="append")
    latest = DeltaTable(uri).version()
    cdf = pa.table(DeltaTable(uri).load_cdf(starting_version=1, ending_version=latest))
    rows = zip(*(cdf[c].to_pylist() for c in ("k", "_commit_version", "_change_type", "p")), strict=True)
    expected = [(k, v, p) for k, v, change, p in rows if change == "insert"]
    assert log_tail.latest_version(lake, table) == latest
    assert log_tail.latest_version(lake, table, 0, 500) == latest
    assert log_tail.latest_version(lake, table, latest, 500) == latest
    assert log_tail.latest_version(lake, table, 0, 3) == 3
    assert log_tail.latest_version(lake, "bronze/none") == -1
    got = log_tail.inserted_rows(lake, table, 1, latest, SCHEMA)
    assert _keys(got) == sorted((k, v) for k, v, _p in expected)
    assert sorted(got["p"].to_pylist()) == sorted(p for _k, _v, p in expected)


def test_a_reader_follows_concurrent_appenders_without_gaps(tmp_path: Path) -> None:
    lake, table = _table(tmp_path)
    per_writer = 150

    def write(writer: int) -> None:
        appender = LocalBlindAppender(lake.uri(table), SCHEMA, ["p"])
        for i in range(per_writer):
            appender.append(pa.table({"k": [writer * 1000 + i], "p": ["a"]}, schema=SCHEMA), f"w{writer}", i + 1)

    writers = [threading.Thread(target=write, args=(w,)) for w in range(2)]
    for t in writers:
        t.start()
    seen: list[int] = []
    cursor = 0
    while True:
        done = not any(t.is_alive() for t in writers)
        end = log_tail.latest_version(lake, table, cursor, 50)
        if end > cursor:
            seen += log_tail.inserted_rows(lake, table, cursor + 1, end, SCHEMA)["k"].to_pylist()
            cursor = end
        elif done:
            break
    assert sorted(seen) == sorted(w * 1000 + i for w in range(2) for i in range(per_writer))


def test_latest_version_after_the_log_was_cleaned_up(tmp_path: Path) -> None:
    """Commits older than a checkpoint may be deleted: the search starts at the checkpoint."""
    lake, table = _table(tmp_path)
    uri = lake.uri(table)
    for i in range(5):
        write_deltalake(uri, pa.table({"k": [i], "p": ["a"]}, schema=SCHEMA), mode="append")
    DeltaTable(uri).create_checkpoint()  # at version 5
    for version in range(5):
        (tmp_path / "lake" / table / "_delta_log" / f"{version:020d}.json").unlink()
    write_deltalake(uri, pa.table({"k": [5], "p": ["a"]}, schema=SCHEMA), mode="append")
    assert log_tail.latest_version(lake, table) == 6
    assert log_tail.latest_version(lake, table, after=2) == 6
    assert log_tail.latest_version(lake, table, after=2, limit=2) == 4
    assert log_tail.inserted_rows(lake, table, 6, 6, SCHEMA)["k"].to_pylist() == [5]


def test_commit_time_is_the_commit_info_timestamp(tmp_path: Path) -> None:
    lake, table = _table(tmp_path)
    write_deltalake(lake.uri(table), pa.table({"k": [1], "p": ["a"]}, schema=SCHEMA), mode="append")
    history = DeltaTable(lake.uri(table)).history(1)[0]
    at = log_tail.commit_time(lake, table, 1)
    assert at is not None and int(at.timestamp() * 1000) == int(history["timestamp"])
    assert log_tail.commit_time(lake, table, 2) is None
