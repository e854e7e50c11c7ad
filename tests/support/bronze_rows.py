"""Helpers to land hand-built webhooks and ops actions in bronze (tests, demos, benchmarks).

Real bronze is written by the receiver (``bronze/``) or the simulator; these helpers write the same
schema directly so silver can be exercised with small, explicit scenarios.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterable, Mapping
from datetime import UTC, datetime
from typing import Any

import pyarrow as pa

from bronze import schema as B  # noqa: N812
from bronze.tables import ensure_tables
from storage.lake import Lake


def webhook_rows(bodies: Iterable[tuple[str, datetime, Mapping[str, Any] | str]]) -> pa.Table:
    """``(receipt_id, received_at, body)`` → a ``bronze/webhook_events`` Arrow table."""
    rows = []
    for receipt_id, received_at, body in bodies:
        payload = body if isinstance(body, str) else json.dumps(body, ensure_ascii=False)
        try:
            parsed = json.loads(payload)
            instance = str(parsed.get("instance") or "unknown")
            event = str(parsed.get("event") or "unknown")
        except (ValueError, AttributeError):  # not JSON: the receiver would have used its URL / headers
            instance, event = "unknown", "messages.upsert"
        received_at = received_at.astimezone(UTC)
        rows.append(
            {
                "receipt_id": receipt_id,
                "received_at": received_at,
                "received_date": received_at.date(),
                "instance": instance,
                "event": event,
                "source_ip": "127.0.0.1",
                "payload": payload,
                "payload_hash": hashlib.sha256(payload.encode()).hexdigest(),
            }
        )
    return pa.Table.from_pylist(rows, schema=B.WEBHOOK_EVENTS_SCHEMA)


def append_webhooks(lake: Lake, table: pa.Table) -> int:
    """Append rows to ``bronze/webhook_events`` (created with CDF on first use); returns the version."""
    ensure_tables(lake, B.WEBHOOK_EVENTS)
    lake.write(B.WEBHOOK_EVENTS, table, mode="append", partition_by=B.WEBHOOK_EVENTS_PARTITIONS)
    return lake.version(B.WEBHOOK_EVENTS) or 0


def ops_rows(actions: Iterable[Mapping[str, Any]]) -> pa.Table:
    """Dicts with bronze ops_events fields (``instance``, ``action``, ``occurred_at``…) → Arrow table."""
    rows = []
    for a in actions:
        occurred = a["occurred_at"].astimezone(UTC)
        details = a.get("details")
        rows.append(
            {
                "action_id": a["action_id"],
                "instance": a["instance"],
                "conversation_id": a.get("conversation_id"),
                "contact_key": a.get("contact_key"),
                "action": a["action"],
                "actor_id": a.get("actor_id"),
                "attendant_id": a.get("attendant_id"),
                "team_id": a.get("team_id"),
                "occurred_at": occurred,
                "extracted_at": a.get("extracted_at", occurred),
                "occurred_date": occurred.date(),
                "details": details if details is None or isinstance(details, str) else json.dumps(details),
            }
        )
    return pa.Table.from_pylist(rows, schema=B.OPS_EVENTS_SCHEMA)


def append_ops(lake: Lake, table: pa.Table) -> int:
    ensure_tables(lake, B.OPS_EVENTS)
    lake.write(B.OPS_EVENTS, table, mode="append", partition_by=B.OPS_EVENTS_PARTITIONS)
    return lake.version(B.OPS_EVENTS) or 0
