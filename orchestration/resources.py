"""Dagster resources: the lake and the ops store, filled from the environment with ``dg.EnvVar``.

A field left unset means "the ``BEAZAP_*`` settings at run time" (:func:`core.settings.get_settings`,
which also reads ``.env``), so ``dagster dev``, the daemon, the receiver and the CLI share one
configuration. :func:`default_resources` names the environment variable (``dg.EnvVar``) when it is
set instead of copying its value: a secret such as the password in ``BEAZAP_DATABASE_URL`` never
becomes a config literal shown in the UI or stored with a run. The launchpad may still override a
field per run (e.g. another lake for a backfill rehearsal).
"""

from __future__ import annotations

import os
from typing import Any

import dagster as dg
from pydantic import Field

from core.settings import Settings, get_settings
from storage.lake import Lake

LAKE_URI_ENV = "BEAZAP_LAKE_URI"
DATABASE_URL_ENV = "BEAZAP_DATABASE_URL"


class LakeResource(dg.ConfigurableResource):
    """The Delta lake (local folder or ``s3://``; S3 credentials come from ``BEAZAP_S3_*``)."""

    lake_uri: str | None = Field(default=None, description="Root of the lake; unset: BEAZAP_LAKE_URI at run time.")

    def settings(self) -> Settings:
        settings = get_settings()
        if not self.lake_uri:
            return settings
        return settings.model_copy(update={"lake_uri": self.lake_uri.rstrip("/") or self.lake_uri})

    def lake(self) -> Lake:
        return Lake.from_settings(self.settings())


class OpsStoreResource(dg.ConfigurableResource):
    """The operational database (SQLite file or PostgreSQL), migrated on first use."""

    database_url: str | None = Field(
        default=None, description="SQLAlchemy URL of the ops store; unset: BEAZAP_DATABASE_URL at run time."
    )
    migrate: bool = Field(default=True, description="Run Alembic upgrades before first use.")

    def engine(self) -> Any:
        from storage import migrate
        from storage.db import get_engine

        settings = get_settings()
        if self.database_url:
            settings = settings.model_copy(update={"database_url": self.database_url})
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


def _env(name: str) -> Any:
    """``dg.EnvVar(name)`` when the variable is set (resolved by Dagster at run time), else ``None``."""
    return dg.EnvVar(name) if os.environ.get(name) else None


def default_resources() -> dict[str, dg.ConfigurableResource]:
    """The code location's resources; values stay in the environment (see the module docstring)."""
    return {
        "lake": LakeResource(lake_uri=_env(LAKE_URI_ENV)),
        "ops_store": OpsStoreResource(database_url=_env(DATABASE_URL_ENV)),
    }
