"""Shared fixtures: a lake in a temp dir, settings pointing at it, and operational databases.

``db_url`` is parametrized over SQLite and a fresh PostgreSQL database (127.0.0.1:5432, trust auth)
created for the test session and dropped at its end. Without PostgreSQL the PG cases skip locally
but **fail in CI** (``CI`` set), as the project's rules require.
"""

from __future__ import annotations

import os
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest
import sqlalchemy as sa

from core.settings import Settings, get_settings
from storage.db import make_engine
from storage.lake import Lake

PG_ADMIN_URL = os.environ.get("BEAZAP_TEST_PG_URL", "postgresql+psycopg://postgres@127.0.0.1:5432/test")
SHARED = Path(__file__).resolve().parents[1].parent / "shared"
SAMPLES_DIR = Path(__file__).resolve().parent / "data" / "evolution"


def _pg_available() -> str | None:
    try:
        engine = make_engine(PG_ADMIN_URL)
        with engine.connect() as conn:
            conn.execute(sa.text("select 1"))
        engine.dispose()
        return None
    except Exception as exc:
        return str(exc).splitlines()[0]


@pytest.fixture(scope="session")
def pg_server_url() -> Iterator[str]:
    """URL of a brand-new PostgreSQL database for this test session (dropped afterwards)."""
    problem = _pg_available()
    if problem:
        if os.environ.get("CI"):
            pytest.fail(f"PostgreSQL is required in CI and is unreachable: {problem}")
        pytest.skip(f"PostgreSQL not reachable: {problem}")
    name = f"beazap_t_{uuid.uuid4().hex[:10]}"
    admin = sa.create_engine(PG_ADMIN_URL, isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:
        conn.execute(sa.text(f'CREATE DATABASE "{name}"'))
    url = PG_ADMIN_URL.rsplit("/", 1)[0] + f"/{name}"
    yield url
    with admin.connect() as conn:
        conn.execute(sa.text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
    admin.dispose()


@pytest.fixture(params=["sqlite", "postgresql"])
def db_url(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[str]:
    """An empty operational database URL: SQLite file, or a fresh PostgreSQL schema state."""
    if request.param == "sqlite":
        yield f"sqlite:///{tmp_path / 'ops.db'}"
        return
    url = request.getfixturevalue("pg_server_url")
    engine = make_engine(url)
    with engine.begin() as conn:
        conn.execute(sa.text("DROP SCHEMA public CASCADE; CREATE SCHEMA public"))
    engine.dispose()
    yield url


@pytest.fixture
def engine(db_url: str) -> Iterator[sa.Engine]:
    """A migrated operational database engine (SQLite and PostgreSQL)."""
    from storage import migrate

    eng = make_engine(db_url)
    migrate.upgrade(eng)
    yield eng
    eng.dispose()


@pytest.fixture
def lake_dir(tmp_path: Path) -> Path:
    path = tmp_path / "lake"
    path.mkdir()
    return path


@pytest.fixture
def settings(monkeypatch: pytest.MonkeyPatch, tmp_path: Path, lake_dir: Path) -> Iterator[Settings]:
    """Settings with the lake and the SQLite ops store inside the test's temp dir."""
    monkeypatch.setenv("BEAZAP_LAKE_URI", str(lake_dir))
    monkeypatch.setenv("BEAZAP_DATABASE_URL", f"sqlite:///{tmp_path / 'beazap.db'}")
    monkeypatch.setenv("BEAZAP_SECRET_KEY_FILE", str(tmp_path / "secret.key"))
    monkeypatch.delenv("BEAZAP_CACHE_URL", raising=False)
    get_settings.cache_clear()
    yield get_settings()
    get_settings.cache_clear()


@pytest.fixture
def lake(settings: Settings) -> Lake:
    return Lake.from_settings(settings)


@pytest.fixture(scope="session")
def moto_endpoint() -> Iterator[str]:
    """A moto S3 server on loopback, in its own process (an in-process server thread can deadlock with
    delta-rs calls that hold the GIL while they wait for its answer)."""
    import socket
    import subprocess
    import sys
    import time

    import boto3

    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
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
            client.list_buckets()
            break
        except Exception:
            if time.monotonic() > deadline or proc.poll() is not None:
                proc.kill()
                raise
            time.sleep(0.2)  # polling for readiness, bounded by the deadline
    yield endpoint
    proc.terminate()
    proc.wait(timeout=20)


def create_bucket(endpoint: str, bucket: str) -> None:
    import boto3

    client = boto3.client(
        "s3", endpoint_url=endpoint, region_name="us-east-1", aws_access_key_id="test", aws_secret_access_key="test"
    )
    if bucket not in {b["Name"] for b in client.list_buckets().get("Buckets", [])}:
        client.create_bucket(Bucket=bucket)


def s3_env(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path, endpoint: str, bucket: str, *, create: bool = True
) -> Settings:
    """Point BeaZap at a fresh prefix of ``bucket`` on the moto server (SQLite ops store in tmp_path)."""
    if create:
        create_bucket(endpoint, bucket)
    monkeypatch.setenv("BEAZAP_LAKE_URI", f"s3://{bucket}/{uuid.uuid4().hex}")
    monkeypatch.setenv("BEAZAP_S3_ENDPOINT_URL", endpoint)
    monkeypatch.setenv("BEAZAP_S3_ALLOW_HTTP", "true")
    monkeypatch.setenv("BEAZAP_S3_ACCESS_KEY_ID", "test")
    monkeypatch.setenv("BEAZAP_S3_SECRET_ACCESS_KEY", "test")
    monkeypatch.setenv("BEAZAP_DATABASE_URL", f"sqlite:///{tmp_path / 'ops.db'}")
    monkeypatch.setenv("BEAZAP_SECRET_KEY_FILE", str(tmp_path / "secret.key"))
    get_settings.cache_clear()
    return get_settings()
