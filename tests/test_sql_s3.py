"""DuckDB lake views and the gold build on an S3 lake (moto in server mode on loopback)."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from datetime import UTC, datetime

import pytest

from core.settings import Settings
from gold.runner import build_gold
from storage.duck import connect
from storage.lake import Lake
from tests.conftest import create_bucket
from tests.support.gold_fixtures import synthetic

BUCKET = "beazap-gold"


@pytest.fixture(scope="module")
def s3_lake(moto_endpoint: str) -> Iterator[Lake]:
    endpoint = moto_endpoint
    create_bucket(endpoint, BUCKET)
    settings = Settings(
        lake_uri=f"s3://{BUCKET}/{uuid.uuid4().hex}",
        s3_endpoint_url=endpoint,
        s3_allow_http=True,
        s3_access_key_id="test",
        s3_secret_access_key="test",
    )
    yield Lake.from_settings(settings)


def test_views_and_gold_on_s3(s3_lake: Lake) -> None:
    rows = synthetic(s3_lake, instances=["inst-1"], start=datetime(2026, 3, 2, 3, tzinfo=UTC), days=2, per_day=4)
    build_gold(s3_lake, as_of=datetime(2026, 3, 6, tzinfo=UTC))
    tables = s3_lake.tables()
    assert {"silver/messages", "silver/conversations", "gold/conversation_facts", "gold/daily_volume"} <= set(tables)
    con = connect(s3_lake)
    assert con.execute("select count(*) from silver.messages").fetchall()[0][0] == len(rows["messages"])
    assert con.execute("select sum(messages) from gold.daily_volume").fetchall()[0][0] == len(rows["messages"])
    assert con.execute("select count(*) from gold.conversation_facts").fetchall()[0][0] == len(rows["conversations"])
