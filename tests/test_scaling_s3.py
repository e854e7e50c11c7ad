"""Two receivers behind a load balancer, one S3 lake: every acknowledged webhook lands exactly once.

Two ``beazap serve`` processes (two nodes) share one S3-compatible lake (moto in server mode on
loopback) and commit to the same ``bronze/webhook_events`` table at the same time. delta-rs writes
each commit with a conditional put (``If-None-Match`` on the next log entry), so a commit that loses
the race retries at the next version instead of overwriting the other's: 0 lost, 0 duplicated.
"""

from __future__ import annotations

import json
import os
import uuid
from pathlib import Path

import boto3
import pyarrow as pa
import pytest

from bronze.schema import WEBHOOK_EVENTS
from core.settings import Settings
from storage import migrate
from storage.db import make_engine
from storage.instances import add_instance
from storage.lake import Lake
from tests.conftest import create_bucket
from tests.test_receiver_process import INSTANCE, TOKEN, Load, serve

BUCKET = "beazap-scale"


@pytest.fixture
def s3_server_env(tmp_path: Path, moto_endpoint: str) -> dict[str, str]:
    create_bucket(moto_endpoint, BUCKET)
    db_url = f"sqlite:///{tmp_path / 'ops.db'}"
    engine = make_engine(db_url)
    migrate.upgrade(engine)
    add_instance(engine, INSTANCE, "acme", token=TOKEN)
    engine.dispose()
    env = {k: v for k, v in os.environ.items() if not k.startswith(("BEAZAP_", "PROMETHEUS_"))}
    env.update(
        BEAZAP_LAKE_URI=f"s3://{BUCKET}/{uuid.uuid4().hex}",
        BEAZAP_S3_ENDPOINT_URL=moto_endpoint,
        BEAZAP_S3_ALLOW_HTTP="true",
        BEAZAP_S3_ACCESS_KEY_ID="test",
        BEAZAP_S3_SECRET_ACCESS_KEY="test",
        BEAZAP_DATABASE_URL=db_url,
        BEAZAP_SECRET_KEY_FILE=str(tmp_path / "secret.key"),
        BEAZAP_LOG_LEVEL="WARNING",
        BEAZAP_GROUP_COMMIT_MAX_WAIT_MS="10",
    )
    return env


def _lake(env: dict[str, str]) -> Lake:
    settings = Settings(
        lake_uri=env["BEAZAP_LAKE_URI"],
        s3_endpoint_url=env["BEAZAP_S3_ENDPOINT_URL"],
        s3_allow_http=True,
        s3_access_key_id="test",
        s3_secret_access_key="test",
        database_url=env["BEAZAP_DATABASE_URL"],
    )
    return Lake.from_settings(settings)


def _log_writers(env: dict[str, str]) -> tuple[int, set[str]]:
    """Commits in the table's log and the receiver processes (app id minus the lane) that made them."""
    endpoint = env["BEAZAP_S3_ENDPOINT_URL"]
    prefix = env["BEAZAP_LAKE_URI"].removeprefix(f"s3://{BUCKET}/") + f"/{WEBHOOK_EVENTS}/_delta_log/"
    client = boto3.client(
        "s3", endpoint_url=endpoint, region_name="us-east-1", aws_access_key_id="test", aws_secret_access_key="test"
    )
    commits, writers = 0, set()
    for page in client.get_paginator("list_objects_v2").paginate(Bucket=BUCKET, Prefix=prefix):
        for obj in page.get("Contents", []):
            if not obj["Key"].endswith(".json"):
                continue
            commits += 1
            body = client.get_object(Bucket=BUCKET, Key=obj["Key"])["Body"].read().decode()
            for line in body.splitlines():
                action = json.loads(line)
                app = action.get("txn", {}).get("appId", "")
                if app.startswith("beazap-receiver-"):
                    writers.add(app.rsplit("-", 1)[0])
    return commits, writers


def test_two_receivers_on_one_s3_lake_lose_and_duplicate_nothing(s3_server_env: dict[str, str]) -> None:
    lake = _lake(s3_server_env)
    assert lake.is_s3 and lake.storage_options.get("conditional_put") == "etag"
    with (
        serve(s3_server_env) as (_a, base_a),
        serve(s3_server_env) as (_b, base_b),
        Load(base_a, threads=6) as load_a,
        Load(base_b, threads=6) as load_b,
    ):
        load_a.wait_for(60, timeout=120)
        load_b.wait_for(60, timeout=120)
    acked = load_a.acked + load_b.acked
    landed = pa.table(lake.open(WEBHOOK_EVENTS).to_pyarrow_table(columns=["receipt_id"])).column(0).to_pylist()
    lost = set(acked) - set(landed)
    assert not lost, f"{len(lost)} acknowledged webhooks lost of {len(acked)}"
    assert len(landed) == len(set(landed)), "a batch was committed twice"
    assert len(set(acked)) == len(acked)  # receipt ids are unique across the two nodes
    commits, writers = _log_writers(s3_server_env)
    assert len(writers) == 2, writers  # both nodes committed to the same log
    assert commits >= 4
