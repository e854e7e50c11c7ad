"""Erasure, verification and retention on an S3 lake (moto in server mode on loopback)."""

from __future__ import annotations

import socket
import subprocess
import sys
import time
import uuid
from collections.abc import Iterator
from pathlib import Path

import boto3
import pytest

from beazap.settings import Settings, get_settings
from ops.governance import erasure, lake_files, retention
from ops.governance.subject import Scrubber, Subject
from storage import maintenance, migrate
from storage.db import get_engine
from storage.instances import add_instance
from storage.lake import Lake
from tests import governance_data as gd

BUCKET = "beazap-gov"


@pytest.fixture(scope="module")
def moto_endpoint() -> Iterator[str]:
    """moto in its own process: an in-process server thread can deadlock with delta-rs calls that
    hold the GIL while they wait for its HTTP answer."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    proc = subprocess.Popen(
        [sys.executable, "-m", "moto.server", "-H", "127.0.0.1", "-p", str(port)],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    endpoint = f"http://127.0.0.1:{port}"
    client = boto3.client(
        "s3", endpoint_url=endpoint, region_name="us-east-1", aws_access_key_id="test", aws_secret_access_key="test"
    )
    deadline = time.monotonic() + 60
    while True:
        try:
            client.create_bucket(Bucket=BUCKET)
            break
        except Exception:
            if time.monotonic() > deadline or proc.poll() is not None:
                proc.kill()
                raise
            time.sleep(0.2)  # polling for readiness, bounded by the deadline
    yield endpoint
    proc.terminate()
    proc.wait(timeout=20)


@pytest.fixture
def s3_settings(monkeypatch: pytest.MonkeyPatch, tmp_path: Path, moto_endpoint: str) -> Iterator[Settings]:
    monkeypatch.setenv("BEAZAP_LAKE_URI", f"s3://{BUCKET}/{uuid.uuid4().hex}")
    monkeypatch.setenv("BEAZAP_S3_ENDPOINT_URL", moto_endpoint)
    monkeypatch.setenv("BEAZAP_S3_ALLOW_HTTP", "true")
    monkeypatch.setenv("BEAZAP_S3_ACCESS_KEY_ID", "test")
    monkeypatch.setenv("BEAZAP_S3_SECRET_ACCESS_KEY", "test")
    monkeypatch.setenv("BEAZAP_DATABASE_URL", f"sqlite:///{tmp_path / 'ops.db'}")
    monkeypatch.setenv("BEAZAP_SECRET_KEY_FILE", str(tmp_path / "secret.key"))
    get_settings.cache_clear()
    yield get_settings()
    get_settings.cache_clear()


def test_erase_and_verify_on_s3(s3_settings: Settings) -> None:
    from gold.runner import build_gold
    from ops.projector import run_once
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
    tables = maintenance.list_tables(lake)
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
