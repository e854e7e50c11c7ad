"""The receiver on an S3 lake (moto in server mode on loopback): landing, concurrent writers, outage → 503."""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Iterator
from pathlib import Path

import boto3
import httpx
import pyarrow as pa
import pytest
from fastapi import FastAPI
from moto.server import ThreadedMotoServer

from api.app import create_app
from bronze.schema import WEBHOOK_EVENTS
from bronze.writer import WEBHOOK_EVENTS_TARGET, DeltaAppender
from core.settings import Settings, get_settings
from storage import migrate
from storage.db import make_engine
from storage.instances import add_instance
from storage.lake import Lake
from tests.conftest import SAMPLES_DIR
from tests.conftest import s3_env as conftest_s3_env
from tests.test_receiver import INSTANCE, TOKEN, running
from tests.test_receiver_process import free_port

BUCKET = "beazap-lake"


def s3_env(monkeypatch: pytest.MonkeyPatch, tmp_path: Path, endpoint: str, *, create: bool = True) -> Settings:
    return conftest_s3_env(monkeypatch, tmp_path, endpoint, BUCKET, create=create)


def make_app(settings: Settings) -> FastAPI:
    engine = make_engine(settings.database_url)
    migrate.upgrade(engine)
    add_instance(engine, INSTANCE, "acme", token=TOKEN)
    app = create_app(settings)
    app.state.engine = engine
    return app


@pytest.fixture(autouse=True)
def _clear_settings() -> Iterator[None]:
    yield
    get_settings.cache_clear()


def test_samples_land_in_an_s3_lake(monkeypatch: pytest.MonkeyPatch, tmp_path: Path, moto_endpoint: str) -> None:
    settings = s3_env(monkeypatch, tmp_path, moto_endpoint)
    app = make_app(settings)
    bodies = {p.name: p.read_bytes() for p in sorted(SAMPLES_DIR.glob("*.json"))}
    acked: dict[str, str] = {}

    async def main() -> None:
        async with running(app) as client:
            assert (await client.get("/readyz")).status_code == 200

            async def one(name: str, body: bytes) -> None:
                response = await client.post("/webhooks/evolution", content=body, headers={"apikey": TOKEN})
                assert response.status_code == 200, response.text
                acked[response.json()["receipt_id"]] = name

            await asyncio.gather(*(one(n, b) for n, b in bodies.items()))
            assert app.state.receiver.events.stats.commits < len(bodies)

    asyncio.run(main())
    lake = Lake.from_settings(settings)
    assert lake.is_s3
    rows = pa.table(lake.open(WEBHOOK_EVENTS).to_pyarrow_table()).to_pylist()
    assert {r["receipt_id"] for r in rows} == set(acked)
    for r in rows:
        assert r["payload"].encode() == bodies[acked[r["receipt_id"]]]


def test_two_writers_on_s3_with_conditional_put(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path, moto_endpoint: str
) -> None:
    from datetime import UTC, datetime

    from bronze.rows import webhook_event_row

    lake = Lake.from_settings(s3_env(monkeypatch, tmp_path, moto_endpoint))
    assert lake.storage_options.get("conditional_put") == "etag"
    DeltaAppender(lake, WEBHOOK_EVENTS_TARGET).ensure_table()
    errors: list[BaseException] = []

    def writer(w: int) -> None:
        appender = DeltaAppender(lake, WEBHOOK_EVENTS_TARGET, app_id=f"s3w{w}")
        try:
            for b in range(8):
                rows = [
                    webhook_event_row(
                        receipt_id=f"{w}-{b}-{k}",
                        received_at=datetime.now(UTC),
                        instance=INSTANCE,
                        event="call",
                        source_ip=None,
                        payload="{}",
                    )
                    for k in range(3)
                ]
                appender.append(rows)
        except BaseException as exc:  # pragma: no cover - reported below
            errors.append(exc)

    threads = [threading.Thread(target=writer, args=(w,)) for w in range(2)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert errors == []
    ids = pa.table(lake.open(WEBHOOK_EVENTS).to_pyarrow_table(columns=["receipt_id"])).column(0).to_pylist()
    assert len(ids) == len(set(ids)) == 2 * 8 * 3


def test_s3_outage_answers_503_and_recovers(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    """S3 goes down mid-run: 503 (retryable) and /readyz 503; back up: accepted again."""
    port = free_port()
    endpoint = f"http://127.0.0.1:{port}"
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=port, verbose=False)
    server.start()
    boto3.client(
        "s3", endpoint_url=endpoint, region_name="us-east-1", aws_access_key_id="test", aws_secret_access_key="test"
    ).create_bucket(Bucket=BUCKET)
    settings = s3_env(monkeypatch, tmp_path, endpoint)
    app = make_app(settings)
    body = (SAMPLES_DIR / "call-offer.json").read_bytes()

    async def post(client: httpx.AsyncClient) -> httpx.Response:
        return await client.post("/webhooks/evolution", content=body, headers={"apikey": TOKEN})

    async def main() -> None:
        nonlocal server
        async with running(app) as client:
            assert (await post(client)).status_code == 200
            server.stop()
            down = await post(client)
            assert down.status_code == 503
            assert down.json()["reason"] == "lake_unavailable"
            app.state.receiver._probe = None
            assert (await client.get("/readyz")).status_code == 503
            server = ThreadedMotoServer(ip_address="127.0.0.1", port=port, verbose=False)
            server.start()  # moto keeps its in-memory buckets across servers in one process
            assert (await post(client)).status_code == 200
            app.state.receiver._probe = None
            assert (await client.get("/readyz")).status_code == 200

    try:
        asyncio.run(main())
    finally:
        server.stop()


def test_s3_endpoint_down_from_the_start(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    settings = s3_env(monkeypatch, tmp_path, f"http://127.0.0.1:{free_port()}", create=False)
    app = make_app(settings)

    async def main() -> None:
        async with running(app) as client:
            body = (SAMPLES_DIR / "call-offer.json").read_bytes()
            response = await client.post("/webhooks/evolution", content=body, headers={"apikey": TOKEN})
            assert response.status_code == 503
            assert (await client.get("/readyz")).status_code == 503
            assert (await client.get("/healthz")).status_code == 200

    asyncio.run(main())
