"""Hand-built Evolution webhooks for silver tests (envelopes exactly as Evolution posts them)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

INSTANCE = "loja-centro"
T0 = datetime(2026, 3, 2, 12, 0, tzinfo=UTC)


def envelope(event: str, data: Any, instance: str = INSTANCE) -> dict[str, Any]:
    return {
        "event": event,
        "instance": instance,
        "data": data,
        "destination": "https://beazap.example.com/webhooks/evolution",
        "date_time": "2026-03-02T09:15:07.120Z",
        "sender": "5511940001111@s.whatsapp.net",
        "server_url": "https://evo.example.com",
        "apikey": None,
    }


def message(
    mid: str,
    jid: str,
    at: datetime,
    *,
    from_me: bool = False,
    text: str = "oi",
    event: str = "messages.upsert",
    instance: str = INSTANCE,
    alt: str | None = None,
    participant: str | None = None,
    status: str | None = None,
) -> dict[str, Any]:
    key: dict[str, Any] = {"remoteJid": jid, "fromMe": from_me, "id": mid}
    if alt:
        key["remoteJidAlt"] = alt
        key["addressingMode"] = "lid"
    if participant:
        key["participant"] = participant
    return envelope(
        event,
        {
            "key": key,
            "pushName": "Você" if from_me else "Cliente",
            "status": status or ("PENDING" if event == "send.message" else "SERVER_ACK" if from_me else "DELIVERY_ACK"),
            "message": {"conversation": text},
            "messageType": "conversation",
            "messageTimestamp": int(at.timestamp()),
            "instanceId": "5f3c2a9e-8d41-4b7a-9a0e-1c2d3e4f5a6b",
            "source": "unknown" if event == "send.message" else "android",
        },
        instance,
    )


def ack(mid: str, jid: str, status: str, *, instance: str = INSTANCE) -> dict[str, Any]:
    return envelope(
        "messages.update",
        {"keyId": mid, "remoteJid": jid, "fromMe": True, "status": status, "messageId": "cm" + mid},
        instance,
    )


def reaction(mid: str, target: str, jid: str, at: datetime, emoji: str, *, from_me: bool = False) -> dict[str, Any]:
    return envelope(
        "messages.upsert",
        {
            "key": {"remoteJid": jid, "fromMe": from_me, "id": mid},
            "status": "DELIVERY_ACK",
            "message": {
                "reactionMessage": {
                    "key": {"remoteJid": jid, "fromMe": not from_me, "id": target},
                    "text": emoji,
                    "senderTimestampMs": str(int(at.timestamp() * 1000)),
                }
            },
            "messageType": "reactionMessage",
            "messageTimestamp": int(at.timestamp()),
            "source": "ios",
        },
    )


def edit(target: str, jid: str, at: datetime, text: str, *, from_me: bool = False) -> dict[str, Any]:
    return envelope(
        "messages.edited",
        {
            "key": {"remoteJid": jid, "fromMe": from_me, "id": target},
            "type": "MESSAGE_EDIT",
            "editedMessage": {"conversation": text},
            "timestampMs": str(int(at.timestamp() * 1000)),
        },
    )


def revoke(target: str, jid: str, at: datetime) -> dict[str, Any]:
    return envelope(
        "messages.edited",
        {
            "key": {"remoteJid": jid, "fromMe": False, "id": target},
            "type": "REVOKE",
            "timestampMs": str(int(at.timestamp() * 1000)),
        },
    )


def op(
    action_id: str,
    action: str,
    contact_key: str,
    at: datetime,
    *,
    attendant: str | None = None,
    team: str | None = None,
    actor: str | None = None,
    details: dict[str, Any] | None = None,
    instance: str = INSTANCE,
) -> dict[str, Any]:
    return {
        "action_id": action_id,
        "instance": instance,
        "contact_key": contact_key,
        "action": action,
        "actor_id": actor or attendant or "system",
        "attendant_id": attendant,
        "team_id": team,
        "occurred_at": at,
        "details": details,
    }


def minutes(n: float) -> timedelta:
    return timedelta(minutes=n)


def hours(n: float) -> timedelta:
    return timedelta(hours=n)
