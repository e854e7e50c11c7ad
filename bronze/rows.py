"""Rows of the bronze landing tables, built in schema column order for the group-commit writer."""

from __future__ import annotations

import hashlib
import json
import uuid
from collections.abc import Iterable, Mapping
from datetime import UTC, datetime
from typing import Any

import pyarrow as pa

from bronze.redact import redact_apikeys, redact_apikeys_raw
from bronze.schema import QUARANTINE_SCHEMA, WEBHOOK_EVENTS_SCHEMA

WEBHOOK_EVENT_COLUMNS = tuple(WEBHOOK_EVENTS_SCHEMA.names)
QUARANTINE_COLUMNS = tuple(QUARANTINE_SCHEMA.names)


def payload_hash(payload: bytes | str) -> str:
    """sha256 hex of the payload's UTF-8 bytes: equal bodies (duplicate deliveries) hash equal."""
    data = payload.encode("utf-8") if isinstance(payload, str) else payload
    return hashlib.sha256(data).hexdigest()


def webhook_event_row(
    *,
    receipt_id: str,
    received_at: datetime,
    instance: str,
    event: str,
    source_ip: str | None,
    payload: str,
) -> tuple[object, ...]:
    """One ``bronze/webhook_events`` row; ``payload`` is the raw body text, unchanged except that
    its ``apikey`` values are replaced by keyed hashes (:mod:`bronze.redact`)."""
    payload = redact_apikeys(payload)
    return (
        receipt_id,
        received_at,
        received_at.date(),
        instance,
        event,
        source_ip,
        payload,
        payload_hash(payload),
    )


def quarantine_row(
    *,
    receipt_id: str,
    received_at: datetime,
    instance: str | None,
    event: str | None,
    source_ip: str | None,
    reason: str,
    body: bytes,
) -> tuple[object, ...]:
    """One ``bronze/quarantine`` row: why it was refused and the raw bytes as received (``apikey``
    values replaced by keyed hashes)."""
    return (receipt_id, received_at, received_at.date(), instance, event, source_ip, reason, redact_apikeys_raw(body))


def envelopes_table(bodies: Iterable[Mapping[str, Any]], received_at: datetime | None = None) -> pa.Table:
    """A ``bronze/webhook_events`` Arrow table from Evolution envelopes (JSON-encoded as the payload),
    each with a fresh receipt id: for tests, benchmarks and tools that land webhooks directly."""
    received_at = received_at or datetime.now(UTC)
    rows = [
        dict(
            zip(
                WEBHOOK_EVENT_COLUMNS,
                webhook_event_row(
                    receipt_id=uuid.uuid4().hex,
                    received_at=received_at,
                    instance=body["instance"],
                    event=body["event"],
                    source_ip="127.0.0.1",
                    payload=json.dumps(body),
                ),
                strict=True,
            )
        )
        for body in bodies
    ]
    return pa.Table.from_pylist(rows, schema=WEBHOOK_EVENTS_SCHEMA)
