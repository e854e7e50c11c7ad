"""Erasure, verification and retention on an S3 lake (moto in server mode on loopback)."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from core.settings import Settings, get_settings
from governance import erasure, lake_files, retention
from governance.subject import Scrubber, Subject
from storage import maintenance, migrate
from storage.db import get_engine
from storage.instances import add_instance
from storage.lake import Lake
from tests import governance_data as gd
from tests.conftest import s3_env

BUCKET = "beazap-gov"


@pytest.fixture
def s3_settings(monkeypatch: pytest.MonkeyPatch, tmp_path: Path, moto_endpoint: str) -> Iterator[Settings]:
    yield s3_env(monkeypatch, tmp_path, moto_endpoint, BUCKET)
    get_settings.cache_clear()


def test_erase_and_verify_on_s3(s3_settings: Settings) -> None:
    from gold.runner import build_gold
    from live.projector import run_once
    from silver.pipeline import build_silver

    lake = Lake.from_settings(s3_settings)
    assert lake.is_s3
    engine = get_engine(s3_settings)
    migrate.upgrade(engine)
    for instance, account in gd.INSTANCES.items():
        add_instance(engine, instance, account)
    gd.build().write(lake)
    build_silver(lake)
    run_once(lake, engine)
    build_gold(lake, engine=engine)
    tables = lake.tables()
    assert {"bronze/webhook_events", "silver/messages", "gold/conversation_facts"} <= set(tables)
    volume = maintenance.count_rows(lake, "silver/messages")

    probe = Scrubber(Subject.from_phone(gd.SUBJECT_PHONE))
    assert lake_files.scan_table_files(lake, "bronze/webhook_events", probe)
    report = erasure.erase_contact(lake, engine, gd.SUBJECT_PHONE)
    assert report.lake["bronze/webhook_events"] > 0 and report.purged_files > 0
    assert erasure.verify_erasure(lake, engine, gd.SUBJECT_PHONE).clean
    assert maintenance.count_rows(lake, "silver/messages") == volume

    plan = retention.run(lake, engine, dry_run=True, settings=s3_settings)
    assert {i.target for i in plan.items} >= {"bronze/webhook_events", "silver/messages"}
    assert maintenance.optimize(lake, "bronze/webhook_events").version_after is not None
