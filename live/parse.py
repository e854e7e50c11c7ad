"""Read Evolution webhook payloads (bronze rows) into the few facts the live store needs.

Only direct chats matter to the operational store: messages (``messages.upsert``, ``send.message``,
``messages.set``), status acks (``messages.update``), edits and revokes (``messages.edited``,
``send.message.update``, ``messages.delete``). Contacts are keyed with :mod:`core.identity`
exactly as silver keys them, so live conversation ids equal silver's.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import orjson

from core.identity import chat_type, is_lid_jid, is_phone_jid, jid_user, normalize_phone

STATUS_RANK = {"error": 0, "pending": 1, "server_ack": 2, "delivery_ack": 3, "read": 4, "played": 5}
_STATUS_NUM = {0: "error", 1: "pending", 2: "server_ack", 3: "delivery_ack", 4: "read", 5: "played"}

_WRAPPERS = (
    "ephemeralMessage",
    "viewOnceMessage",
    "viewOnceMessageV2",
    "viewOnceMessageV2Extension",
    "documentWithCaptionMessage",
    "editedMessage",
)
_KIND_BY_KEY = {
    "conversation": "text",
    "extendedTextMessage": "text",
    "imageMessage": "image",
    "audioMessage": "audio",
    "videoMessage": "video",
    "ptvMessage": "video",
    "documentMessage": "document",
    "stickerMessage": "sticker",
    "locationMessage": "location",
    "liveLocationMessage": "location",
    "contactMessage": "contact",
    "contactsArrayMessage": "contact",
    "reactionMessage": "reaction",
    "pollCreationMessage": "poll",
    "pollCreationMessageV2": "poll",
    "pollCreationMessageV3": "poll",
}
MESSAGE_EVENTS = frozenset({"messages.upsert", "send.message", "messages.set"})
UPDATE_EVENTS = frozenset({"messages.update", "messages.edited", "send.message.update", "messages.delete"})
CONTACT_EVENTS = frozenset({"contacts.upsert", "contacts.update"})
RELEVANT_EVENTS = MESSAGE_EVENTS | UPDATE_EVENTS | CONTACT_EVENTS


@dataclass(slots=True)
class Message:
    """A direct-chat message as the live store keeps it."""

    instance_id: str
    message_id: str
    timestamp: datetime
    direction: str  # inbound | outbound
    kind: str
    text: str | None
    chat_jid: str
    contact_key: str
    status: str | None
    phone: str | None = None  # E.164 when the payload carries it
    lid: str | None = None  # normalized LID JID when the payload carries it


@dataclass(slots=True)
class Seen:
    """A time the live store only notes: a message of a chat it does not keep (groups) or a bronze receipt
    time; it moves the instance watermark, which bounds the live as-of (``live.store_sql.live_as_of``)."""

    instance_id: str
    timestamp: datetime


@dataclass(slots=True)
class Alias:
    """A LID and the phone behind it (learned from a message or a contact event)."""

    instance_id: str
    lid: str
    phone: str


@dataclass(slots=True)
class MessageUpdate:
    """A later fact about a message: a status ack, an edit or a revoke."""

    instance_id: str
    message_id: str
    status: str | None = None
    text: str | None = None
    edited: bool = False
    revoked: bool = False


def _as_int(value: Any) -> int | None:
    if isinstance(value, bool):
        return None
    if isinstance(value, int | float):
        return int(value)
    if isinstance(value, str) and value.strip().isdigit():
        return int(value.strip())
    if isinstance(value, dict) and "low" in value:
        return _as_int(value.get("low"))
    return None


def normalize_status(value: Any) -> str | None:
    if isinstance(value, int) and not isinstance(value, bool):
        return _STATUS_NUM.get(value)
    if isinstance(value, str):
        status = value.strip().lower()
        if status == "deleted":
            return None
        return status if status in STATUS_RANK else None
    return None


def better_status(current: str | None, new: str | None) -> str | None:
    """The later of two statuses on the ladder (never goes backwards)."""
    if new is None:
        return current
    if current is None:
        return new
    return new if STATUS_RANK.get(new, -1) > STATUS_RANK.get(current, -1) else current


def normalize_lid(jid: str) -> str:
    """``123:4@lid`` → ``123@lid`` (the form silver uses)."""
    return f"{jid_user(jid)}@lid"


def identities(key: dict[str, Any], data: dict[str, Any]) -> tuple[str | None, str | None]:
    """(E.164 phone, normalized LID) of a direct chat from every field that may carry them."""
    candidates = [
        key.get("remoteJid"),
        key.get("remoteJidAlt"),
        key.get("senderPn") or data.get("senderPn"),
        key.get("previousRemoteJid"),
        key.get("senderLid") or data.get("senderLid"),
    ]
    phone = lid = None
    for jid in candidates:
        if not isinstance(jid, str):
            continue
        if phone is None and is_phone_jid(jid):
            phone = normalize_phone(jid)
        elif lid is None and is_lid_jid(jid):
            lid = normalize_lid(jid)
    return phone, lid


def contact_key(key: dict[str, Any], data: dict[str, Any]) -> str | None:
    """E.164 phone of a direct chat when any field carries it, else the LID JID (as silver keys it)."""
    phone, lid = identities(key, data)
    return phone or lid


def _unwrap(message: dict[str, Any]) -> dict[str, Any]:
    for _ in range(4):
        for wrapper in _WRAPPERS:
            inner = message.get(wrapper)
            if isinstance(inner, dict) and isinstance(inner.get("message"), dict):
                message = inner["message"]
                break
        else:
            return message
    return message


def kind_and_text(message: Any) -> tuple[str | None, str | None]:
    """(kind, text) of a message body; kind None for protocol messages that are not new messages."""
    if not isinstance(message, dict):
        return "other", None
    message = _unwrap(message)
    if "protocolMessage" in message:
        return None, None
    for key, value in message.items():
        kind = _KIND_BY_KEY.get(key)
        if kind is None:
            continue
        if key == "conversation":
            return kind, value if isinstance(value, str) else None
        text = None
        if isinstance(value, dict):
            text = value.get("text") or value.get("caption")
        return kind, text if isinstance(text, str) else None
    return "other", None


def _message(instance: str, data: Any) -> Message | Seen | None:
    if not isinstance(data, dict):
        return None
    key = data.get("key")
    if not isinstance(key, dict):
        return None
    jid = key.get("remoteJid")
    message_id = key.get("id")
    ctype = chat_type(jid if isinstance(jid, str) else None)
    if not isinstance(message_id, str) or ctype == "broadcast":
        return None
    kind, text = kind_and_text(data.get("message"))
    if kind is None or kind == "reaction":  # protocol messages / reactions attach to their target
        return None
    seconds = _as_int(data.get("messageTimestamp"))
    if seconds is None:
        return None
    if ctype != "direct":
        return Seen(instance, datetime.fromtimestamp(seconds, UTC))
    phone, lid = identities(key, data)
    ckey = phone or lid
    if ckey is None:
        return None
    return Message(
        instance_id=instance,
        message_id=message_id,
        timestamp=datetime.fromtimestamp(seconds, UTC),
        direction="outbound" if key.get("fromMe") else "inbound",
        kind=kind,
        text=text,
        chat_jid=str(jid),
        contact_key=ckey,
        status=normalize_status(data.get("status")),
        phone=phone,
        lid=lid,
    )


def _updates(event: str, instance: str, data: Any) -> list[MessageUpdate]:
    items = data if isinstance(data, list) else [data]
    out: list[MessageUpdate] = []
    for item in items:
        if not isinstance(item, dict):
            continue
        if event == "messages.update":
            mid = item.get("keyId") or (item.get("key") or {}).get("id")
            status = normalize_status(item.get("status"))
            if isinstance(mid, str) and status:
                out.append(MessageUpdate(instance, mid, status=status))
        elif event == "messages.delete":
            mid = item.get("id") or (item.get("key") or {}).get("id") or item.get("keyId")
            if isinstance(mid, str):
                out.append(MessageUpdate(instance, mid, revoked=True))
        else:  # messages.edited / send.message.update
            key = item.get("key") or {}
            mid = key.get("id") if isinstance(key, dict) else None
            kind = item.get("type")
            if not isinstance(mid, str):
                continue
            if kind == "REVOKE":
                out.append(MessageUpdate(instance, mid, revoked=True))
            elif kind == "MESSAGE_EDIT":
                _kind, text = kind_and_text(item.get("editedMessage"))
                out.append(MessageUpdate(instance, mid, text=text, edited=True))
    return out


def _aliases(instance: str, data: Any) -> list[Alias]:
    out = []
    for item in data if isinstance(data, list) else [data]:
        if not isinstance(item, dict):
            continue
        jids = [item.get("remoteJid") or item.get("id"), item.get("phoneNumber"), item.get("lid")]
        phone = next((normalize_phone(j) for j in jids if isinstance(j, str) and is_phone_jid(j)), None)
        lid = next((normalize_lid(j) for j in jids if isinstance(j, str) and is_lid_jid(j)), None)
        if phone and lid:
            out.append(Alias(instance, lid, phone))
    return out


Fact = Message | MessageUpdate | Alias | Seen


def parse(instance: str, event: str, payload: str | bytes) -> list[Fact]:
    """Facts of one bronze row (empty for events the live store does not use or cannot read)."""
    if event not in RELEVANT_EVENTS:
        return []
    try:
        body = orjson.loads(payload)
    except orjson.JSONDecodeError:
        return []
    if not isinstance(body, dict):
        return []
    data = body.get("data")
    if event in CONTACT_EVENTS:
        return list(_aliases(instance, data))
    if event in MESSAGE_EVENTS:
        items = data if isinstance(data, list) else [data]
        if event == "messages.set" and isinstance(data, dict) and isinstance(data.get("messages"), list):
            items = data["messages"]
        return [m for m in (_message(instance, item) for item in items) if m is not None]
    return list(_updates(event, instance, data))
