"""Dagster resources built from BeaZap settings (``BEAZAP_*``): the lake and the ops store.

Both are ``ConfigurableResource``s whose defaults come from :func:`core.settings.get_settings`, so
``dagster dev`` and the daemon use the same environment as the receiver, workers and CLI; the UI's
launchpad may override them per run (e.g. another lake for a backfill rehearsal).
"""

from __future__ import annotations

from typing import Any

import dagster as dg
from pydantic import Field

from core.settings import Settings, get_settings
from storage.lake import Lake


class LakeResource(dg.ConfigurableResource):
    """The Delta lake (local folder or ``s3://``; S3 credentials come from ``BEAZAP_S3_*``)."""

    lake_uri: str = Field(description="Root of the lake (BEAZAP_LAKE_URI).")

    @classmethod
    def from_settings(cls, settings: Settings | None = None) -> LakeResource:
        return cls(lake_uri=(settings or get_settings()).lake_uri)

    def settings(self) -> Settings:
        return get_settings().model_copy(update={"lake_uri": self.lake_uri.rstrip("/") or self.lake_uri})

    def lake(self) -> Lake:
        return Lake.from_settings(self.settings())


class OpsStoreResource(dg.ConfigurableResource):
    """The operational database (SQLite file or PostgreSQL), migrated on first use."""

    database_url: str = Field(description="SQLAlchemy URL of the ops store (BEAZAP_DATABASE_URL).")
    migrate: bool = Field(default=True, description="Run Alembic upgrades before first use.")

    @classmethod
    def from_settings(cls, settings: Settings | None = None) -> OpsStoreResource:
        return cls(database_url=(settings or get_settings()).database_url)

    def engine(self) -> Any:
        from storage import migrate
        from storage.db import get_engine

        settings = get_settings().model_copy(update={"database_url": self.database_url})
        engine = get_engine(settings)
        if self.migrate:
            _migrate_once(engine, migrate)
        return engine


_MIGRATED: set[str] = set()


def _migrate_once(engine: Any, migrate: Any) -> None:
    key = engine.url.render_as_string(hide_password=True)
    if key not in _MIGRATED:
        migrate.upgrade(engine)
        _MIGRATED.add(key)


def default_resources(settings: Settings | None = None) -> dict[str, dg.ConfigurableResource]:
    settings = settings or get_settings()
    return {"lake": LakeResource.from_settings(settings), "ops_store": OpsStoreResource.from_settings(settings)}
