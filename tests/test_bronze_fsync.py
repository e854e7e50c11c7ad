"""Acknowledged means durable (issue 12, item 4): one group commit fsyncs its Parquet files, their
partition folders, the commit file and ``_delta_log`` before the batch is acknowledged; a setting
turns it off."""

from __future__ import annotations

import os
from datetime import timedelta
from pathlib import Path

import pytest

from bronze import fastcommit
from bronze.writer import WEBHOOK_EVENTS_TARGET, DeltaAppender
from core.settings import Settings
from storage.lake import Lake
from tests.test_bronze_fastcommit import BASE, rows


def _record_fsyncs(monkeypatch: pytest.MonkeyPatch) -> list[tuple[Path, int]]:
    """Every fsync done by the fast-commit module, as (path, inode) at the time of the call."""
    seen: list[tuple[Path, int]] = []
    real = os.fsync

    def spy(fd: int) -> None:
        seen.append((Path(os.readlink(f"/proc/self/fd/{fd}")), os.fstat(fd).st_ino))
        real(fd)

    monkeypatch.setattr(fastcommit.os, "fsync", spy)
    return seen


def _appender(lake: Lake, fsync: bool) -> DeltaAppender:
    appender = DeltaAppender(lake, WEBHOOK_EVENTS_TARGET, app_id="durable", fsync=fsync)
    appender.ensure_table()
    return appender


def test_group_commit_fsyncs_files_log_entry_and_folders(lake: Lake, monkeypatch: pytest.MonkeyPatch) -> None:
    appender = _appender(lake, fsync=True)
    seen = _record_fsyncs(monkeypatch)
    batch = rows(0, 3) + rows(3, 2, when=BASE + timedelta(days=1))  # two partitions, one commit
    appender.append(batch)
    table = Path(appender.uri)
    log_dir = table / "_delta_log"
    paths = {p for p, _ in seen}
    inodes = {i for _, i in seen}
    data_files = [p for p in table.rglob("*.parquet") if "_delta_log" not in p.parts]
    assert len(data_files) == 2
    assert set(data_files) <= paths
    assert {f.parent for f in data_files} <= paths  # partition folders
    assert table in paths  # the table folder naming the (new) partition folders
    assert log_dir in paths
    [commit] = sorted(log_dir.glob("*.json"))[-1:]
    assert commit.stat().st_ino in inodes  # the commit file's content (written as a temp, then linked)
    before = len(seen)
    appender.append(rows(10, 2))
    assert 0 < len(seen) - before <= 4  # one data file, its folder, the log entry, the log folder


def test_fsync_can_be_turned_off(lake: Lake, settings: Settings, monkeypatch: pytest.MonkeyPatch) -> None:
    assert settings.bronze_fsync is True  # on by default
    appender = _appender(lake, fsync=False)
    seen = _record_fsyncs(monkeypatch)
    appender.append(rows(0, 3))
    assert seen == []
    monkeypatch.setenv("BEAZAP_BRONZE_FSYNC", "false")
    assert Settings().bronze_fsync is False
