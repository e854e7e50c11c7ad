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

from beazap.settings import Settings, get_settings
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
