"""Test helpers for the operational store: build Evolution envelopes and land them in bronze."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from typing import Any

import pyarrow as pa

from bronze.rows import envelopes_table
from bronze.schema import (
    OPS_EVENTS,
    OPS_EVENTS_SCHEMA,
    WEBHOOK_EVENTS,
)
from bronze.tables import ensure_tables
from storage.lake import Lake

BASE_TS = 1772442907  # 2026-03-02T09:15:07Z


def msg(
    instance: str,
    mid: str,
    ts: int,
    *,
    phone: str = "5511987654321",
    from_me: bool = False,
    text: str = "oi",
    event: str = "messages.upsert",
    status: str | None = None,
) -> dict[str, Any]:
    return {
        "event": event,
        "instance": instance,
        "data": {
            "key": {"remoteJid": f"{phone}@s.whatsapp.net", "fromMe": from_me, "id": mid},
            "pushName": "x",
            "status": status or ("PENDING" if from_me else "DELIVERY_ACK"),
            "message": {"conversation": text},
            "messageType": "conversation",
            "messageTimestamp": ts,
        },
        "date_time": "2026-03-02T09:15:07.120Z",
        "apikey": None,
    }


def ack(instance: str, mid: str, status: str = "READ", phone: str = "5511987654321") -> dict[str, Any]:
    return {
        "event": "messages.update",
        "instance": instance,
        "data": {"keyId": mid, "remoteJid": f"{phone}@s.whatsapp.net", "fromMe": True, "status": status},
    }


def revoke(instance: str, mid: str, phone: str = "5511987654321") -> dict[str, Any]:
    return {
        "event": "messages.edited",
        "instance": instance,
        "data": {"key": {"remoteJid": f"{phone}@s.whatsapp.net", "fromMe": False, "id": mid}, "type": "REVOKE"},
    }


def write_webhooks(lake: Lake, envelopes: list[dict[str, Any]], received_at: datetime | None = None) -> None:
    """Append ``envelopes`` to bronze/webhook_events in ONE commit (created with CDF if needed).

    The test traffic is old-dated, so it lands as a replay received when it happened (by default the
    latest message time of the batch): the as-of instant, bounded by what bronze holds, is then that
    time, not today's — otherwise every conversation would already be closed."""
    ensure_tables(lake, WEBHOOK_EVENTS)
    if received_at is None:
        times = [e["data"]["messageTimestamp"] for e in envelopes if "messageTimestamp" in (e.get("data") or {})]
        received_at = datetime.fromtimestamp(max(times, default=BASE_TS), UTC)
    lake.write(WEBHOOK_EVENTS, envelopes_table(envelopes, received_at=received_at))


def write_ops_events(lake: Lake, rows: list[dict[str, Any]]) -> None:
    ensure_tables(lake, OPS_EVENTS)
    now = datetime.now(UTC)
    full = []
    for r in rows:
        occurred = r["occurred_at"]
        full.append(
            {
                "action_id": r["action_id"],
                "instance": r["instance"],
                "conversation_id": r.get("conversation_id"),
                "contact_key": r.get("contact_key"),
                "action": r["action"],
                "actor_id": r.get("actor_id"),
                "attendant_id": r.get("attendant_id"),
                "team_id": r.get("team_id"),
                "occurred_at": occurred,
                "extracted_at": now,
                "occurred_date": occurred.date(),
                "details": json.dumps(r["details"]) if r.get("details") is not None else None,
            }
        )
    lake.write(OPS_EVENTS, pa.Table.from_pylist(full, schema=OPS_EVENTS_SCHEMA))
