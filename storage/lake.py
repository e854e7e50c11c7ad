"""The lake: where each Delta table lives and how to open it (local folder or S3).

Every layer reaches Delta through :class:`Lake`, so local paths, ``s3://`` URIs and their
``storage_options`` are decided in one place. Tables are addressed as ``layer/name``
(e.g. ``bronze/webhook_events``, ``silver/messages``).
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pyarrow as pa
from deltalake import DeltaTable, write_deltalake
from deltalake.exceptions import TableNotFoundError

from core.settings import Settings, get_settings

LAYERS = ("bronze", "silver", "gold")


@dataclass(frozen=True)
class Lake:
    """A Delta lake rooted at ``root`` (a local folder or ``s3://bucket/prefix``)."""

    root: str
    storage_options: dict[str, str] = field(default_factory=dict)

    @classmethod
    def from_settings(cls, settings: Settings | None = None) -> Lake:
        settings = settings or get_settings()
        root = settings.lake_uri
        options: dict[str, str] = {}
        if settings.lake_is_s3:
            options["AWS_REGION"] = settings.s3_region
            if settings.s3_endpoint_url:
                options["AWS_ENDPOINT_URL"] = settings.s3_endpoint_url
            if settings.s3_allow_http:
                options["AWS_ALLOW_HTTP"] = "true"
            if settings.s3_access_key_id:
                options["AWS_ACCESS_KEY_ID"] = settings.s3_access_key_id
            if settings.s3_secret_access_key:
                options["AWS_SECRET_ACCESS_KEY"] = settings.s3_secret_access_key.get_secret_value()
            if settings.s3_conditional_put:
                options["conditional_put"] = "etag"
            else:
                options["AWS_S3_ALLOW_UNSAFE_RENAME"] = "true"
        else:
            root = str(Path(root).expanduser().absolute())
        return cls(root=root, storage_options=options)

    @property
    def is_s3(self) -> bool:
        return self.root.startswith("s3://")

    def uri(self, table: str) -> str:
        """URI of ``layer/name`` (``bronze/webhook_events``)."""
        layer = table.split("/", 1)[0]
        if layer not in LAYERS:
            raise ValueError(f"unknown lake layer in {table!r}; expected one of {LAYERS}")
        return f"{self.root}/{table}"

    def ensure_root(self) -> None:
        if not self.is_s3:
            os.makedirs(self.root, exist_ok=True)

    def exists(self, table: str) -> bool:
        return DeltaTable.is_deltatable(self.uri(table), storage_options=self.storage_options or None)

    def open(self, table: str, version: int | None = None) -> DeltaTable:
        """Open a table; raises :class:`TableNotFoundError` when it was never written."""
        return DeltaTable(self.uri(table), version=version, storage_options=self.storage_options or None)

    def open_or_none(self, table: str) -> DeltaTable | None:
        try:
            return self.open(table)
        except TableNotFoundError:
            return None

    def version(self, table: str) -> int | None:
        """Current Delta version of ``table`` or ``None`` when it does not exist."""
        dt = self.open_or_none(table)
        return None if dt is None else dt.version()

    def create(
        self,
        table: str,
        schema: pa.Schema,
        partition_by: list[str] | None = None,
        configuration: dict[str, str | None] | None = None,
    ) -> DeltaTable:
        """Create ``table`` empty with ``schema`` if it does not exist yet (idempotent)."""
        existing = self.open_or_none(table)
        if existing is not None:
            return existing
        self.ensure_root()
        try:
            return DeltaTable.create(
                self.uri(table),
                schema=schema,
                partition_by=partition_by,
                mode="ignore",
                configuration=configuration,
                storage_options=self.storage_options or None,
            )
        except Exception:
            # Another process created it first: opening must now work.
            existing = self.open_or_none(table)
            if existing is None:
                raise
            return existing

    def write(self, table: str, data: pa.Table, mode: str = "append", **kwargs: Any) -> None:
        """``write_deltalake`` with this lake's storage options."""
        self.ensure_root()
        write_deltalake(self.uri(table), data, mode=mode, storage_options=self.storage_options or None, **kwargs)
