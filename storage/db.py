"""Operational database engine: one SQLAlchemy 2 engine per URL (psycopg 3 pool or SQLite file).

PostgreSQL uses the seed's pool settings (``pool_size=10, max_overflow=20, pool_pre_ping``,
configurable); SQLite gets WAL, foreign keys and a busy timeout so the receiver, workers and
CLI can share the embedded file.
"""

from __future__ import annotations

import os
from functools import lru_cache
from pathlib import Path
from typing import Any

from sqlalchemy import Engine, create_engine, event
from sqlalchemy.engine import make_url

from core.settings import Settings, get_settings


def _sqlite_pragmas(dbapi_connection: Any, _record: Any) -> None:
    cursor = dbapi_connection.cursor()
    cursor.execute("PRAGMA foreign_keys=ON")
    cursor.execute("PRAGMA journal_mode=WAL")
    cursor.execute("PRAGMA busy_timeout=10000")
    cursor.execute("PRAGMA synchronous=NORMAL")
    cursor.close()


def make_engine(url: str, pool_size: int = 10, max_overflow: int = 20) -> Engine:
    """Create an engine for ``url`` with the right pool and dialect settings."""
    parsed = make_url(url)
    if parsed.get_backend_name() == "sqlite":
        if parsed.database and parsed.database != ":memory:":
            Path(parsed.database).expanduser().parent.mkdir(parents=True, exist_ok=True)
        engine = create_engine(url, connect_args={"check_same_thread": False, "timeout": 30})
        event.listen(engine, "connect", _sqlite_pragmas)
        return engine
    return create_engine(url, pool_size=pool_size, max_overflow=max_overflow, pool_pre_ping=True, pool_recycle=1800)


@lru_cache(maxsize=8)
def _cached_engine(url: str, pool_size: int, max_overflow: int, pid: int) -> Engine:
    return make_engine(url, pool_size, max_overflow)


def get_engine(settings: Settings | None = None) -> Engine:
    """The process-wide engine for the configured ``database_url`` (one per process after fork)."""
    settings = settings or get_settings()
    return _cached_engine(settings.database_url, settings.db_pool_size, settings.db_max_overflow, os.getpid())


def is_postgres(engine: Engine) -> bool:
    return engine.dialect.name == "postgresql"
