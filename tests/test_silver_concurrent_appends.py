"""Incremental silver while receivers append to bronze: no delta-rs "gap" refusal, no row lost.

delta-rs lists the whole ``_delta_log`` for ``version()`` and ``load_cdf()``; a listing that races
new commit files is refused ("Expected contiguous commit files, but found gap") — benchmarks/soak.py
at 300 webhooks/s counted 11 such failed silver runs. Silver reads bronze's changes by commit path
(``storage.log_tail``), the reader the live projector uses.
"""

from __future__ import annotations

import json
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import timedelta
from pathlib import Path

from test_silver_scenarios import T0, message

from bronze import schema as B  # noqa: N812
from bronze.fastcommit import LocalBlindAppender
from bronze.tables import ensure_tables
from silver import schema as S  # noqa: N812
from silver.pipeline import build_silver
from storage.lake import Lake
from tests.support.bronze_rows import webhook_rows

WRITERS = 2
RUNS = 3  # silver runs, each while the writers append
PER_RUN = 120  # commits per writer during one run (bounds the test's time)
LOG_COMMITS = 2000
DEADLINE_S = 120.0


def _body(writer: int, i: int) -> tuple[str, object, dict]:
    at = T0 + timedelta(seconds=i, milliseconds=writer)
    jid = f"55119{writer:04d}{i % 50:04d}@s.whatsapp.net"
    return f"w{writer}-{i}", at, message(f"M{writer}-{i:05d}", jid, at, text=f"t{i}")


def _message_ids(lake: Lake) -> set[str]:
    return set(lake.open(S.MESSAGES).to_pyarrow_table(columns=["message_id"]).column(0).to_pylist())


class Appenders:
    """Receiver-like writers (``LocalBlindAppender``, one commit per webhook) that append only while a
    silver run is under way, ``PER_RUN`` commits each per run: every run races the appends."""

    def __init__(self, lake: Lake) -> None:
        self.lake = lake
        self.cond = threading.Condition()
        self.budget = [0] * WRITERS  # commits each writer may still make in the current run
        self.stopped = False
        self.written: list[list[str]] = [[] for _ in range(WRITERS)]
        self.failures: list[BaseException] = []
        self.threads = [threading.Thread(target=self._write, args=(w,)) for w in range(WRITERS)]

    def __enter__(self) -> Appenders:
        for t in self.threads:
            t.start()
        return self

    def __exit__(self, *exc: object) -> None:
        with self.cond:
            self.stopped = True
            self.cond.notify_all()
        for t in self.threads:
            t.join()

    @contextmanager
    def appending(self) -> Iterator[None]:
        with self.cond:
            self.budget = [PER_RUN] * WRITERS
            self.cond.notify_all()
        try:
            yield
        finally:
            with self.cond:
                self.budget = [0] * WRITERS

    def _write(self, writer: int) -> None:
        appender = LocalBlindAppender(
            self.lake.uri(B.WEBHOOK_EVENTS), B.WEBHOOK_EVENTS_SCHEMA, B.WEBHOOK_EVENTS_PARTITIONS, fsync=False
        )
        i = 0
        try:
            while True:
                with self.cond:
                    self.cond.wait_for(lambda: self.stopped or self.budget[writer] > 0, timeout=DEADLINE_S)
                    if self.stopped:
                        return
                    if self.budget[writer] <= 0:
                        continue
                    self.budget[writer] -= 1
                receipt, at, body = _body(writer, i)
                appender.append(webhook_rows([(receipt, at, body)]), f"test-{writer}", i + 1)
                self.written[writer].append(body["data"]["key"]["id"])
                i += 1
        except BaseException as exc:  # surfaced by the test's assertion
            self.failures.append(exc)


def _long_log(lake: Lake, commits: int) -> None:
    """``commits`` empty commits (``commitInfo`` only), as a log grows over hours of receiving: every
    listing of the log then takes long enough to overlap the appends made meanwhile."""
    log_dir = Path(lake.uri(B.WEBHOOK_EVENTS)) / "_delta_log"
    first = lake.version(B.WEBHOOK_EVENTS) + 1
    info = {"commitInfo": {"timestamp": 0, "operation": "WRITE", "operationParameters": {"mode": "Append"}}}
    for version in range(first, first + commits):
        (log_dir / f"{version:020d}.json").write_text(json.dumps(info) + "\n")


def test_incremental_silver_follows_concurrent_appends(tmp_path) -> None:
    lake = Lake(str(tmp_path / "lake"))
    ensure_tables(lake, B.WEBHOOK_EVENTS)
    lake.write(B.WEBHOOK_EVENTS, webhook_rows([_body(9, 0)]), partition_by=B.WEBHOOK_EVENTS_PARTITIONS)
    _long_log(lake, LOG_COMMITS)
    errors: list[str] = []
    with Appenders(lake) as appenders:
        for _ in range(RUNS):  # the first run is a full one (no cursor yet), the others incremental
            with appenders.appending():
                try:
                    build_silver(lake)
                except Exception as exc:  # the failure this test pins: counted, the loop goes on
                    errors.append(f"{type(exc).__name__}: {str(exc)[:120]}")
    assert not appenders.failures
    assert errors == []
    build_silver(lake)  # the appends after the last run's read
    expected = {mid for ids in appenders.written for mid in ids} | {"M9-00000"}
    assert len(expected) > RUNS * WRITERS
    assert _message_ids(lake) == expected
