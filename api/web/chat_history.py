"""What the conversation view shows that the operational store does not keep: from silver.

The live store holds each message's current text, status and flags. Silver also keeps the reactions
on a message (latest per person), the text before an edit and every edit (``message_events``), the
media's type, length and size, and the calls with the contact. This module reads exactly those for
ONE conversation — filtered by its instance and conversation (calls: by its contact and time span),
so nothing of another tenant is read — and never fails the page: a lake that is not built yet gives
an empty history. Silver follows the webhooks within about a minute; the live store's facts (text,
ticks, edited/deleted flags) stay the page's truth.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

import pyarrow.dataset as ds

from core.logging import get_logger
from silver.schema import CALLS, MESSAGE_EVENTS, MESSAGES
from storage.lake import Lake

log = get_logger(__name__)


@dataclass
class History:
    messages: dict[str, dict[str, Any]] = field(default_factory=dict)  # message id → reactions, edits, media
    calls: list[dict[str, Any]] = field(default_factory=list)


def _rows(lake: Lake, table: str, where: ds.Expression, columns: list[str]) -> list[dict[str, Any]]:
    dt = lake.open_or_none(table)
    if dt is None:
        return []
    data = lake.dataset(table, dt)
    columns = [c for c in columns if c in data.schema.names]
    return data.to_table(columns=columns, filter=where).to_pylist()


def load_history(lake: Lake, conv: dict[str, Any], now: datetime) -> History:
    """Reactions, edit history and media of the conversation's messages, and its calls."""
    try:
        return _load(lake, conv, now)
    except Exception:  # a damaged or half-built lake must not take the console down
        log.warning("conversation history unavailable", conversation_id=conv["id"], exc_info=True)
        return History()


def _load(lake: Lake, conv: dict[str, Any], now: datetime) -> History:
    instance, out = conv["instance_id"], History()
    msg_rows = _rows(
        lake,
        MESSAGES,
        (ds.field("instance_id") == instance) & (ds.field("conversation_id") == conv["id"]),
        ["message_id", "kind", "original_text", "media_mimetype", "media_size", "media_seconds", "reactions"],
    )
    edited: list[str] = []
    for r in msg_rows:
        reactions = [x["emoji"] for x in (r.get("reactions") or []) if x.get("emoji")]
        media = None
        if r.get("media_mimetype") or r.get("media_seconds") or r.get("media_size"):
            media = {
                "mimetype": r.get("media_mimetype"),
                "seconds": r.get("media_seconds"),
                "size": r.get("media_size"),
            }
        out.messages[r["message_id"]] = {
            "reactions": reactions,
            "original_text": r.get("original_text"),
            "media": media,
        }
        if r.get("original_text") is not None:
            edited.append(r["message_id"])
    if edited:
        events = _rows(
            lake,
            MESSAGE_EVENTS,
            (ds.field("instance_id") == instance)
            & (ds.field("event_type") == "edit")
            & ds.field("message_id").isin(edited),
            ["message_id", "text", "event_at"],
        )
        for e in sorted(events, key=lambda e: e["event_at"]):
            out.messages[e["message_id"]].setdefault("edits", []).append({"at": e["event_at"], "text": e["text"]})
    start = datetime.fromisoformat(str(conv["opened_at"]).replace("Z", "+00:00"))
    end_value = conv.get("closed_at") or conv.get("resolved_at") or conv.get("expired_at")
    end = datetime.fromisoformat(str(end_value).replace("Z", "+00:00")) if end_value else now
    out.calls = [
        {
            "call_id": c["call_id"],
            "offered_at": c["offered_at"],
            "video": bool(c["is_video"]),
            "outcome": c["outcome"],
            "seconds": (c["ended_at"] - c["accepted_at"]).total_seconds()
            if c["accepted_at"] and c["ended_at"]
            else None,
        }
        for c in _rows(
            lake,
            CALLS,
            (ds.field("instance_id") == instance)
            & (ds.field("contact_key") == conv["contact_key"])
            & (ds.field("is_group") == False)  # noqa: E712 (a pyarrow expression, not a bool)
            & (ds.field("offered_at") >= start)
            & (ds.field("offered_at") <= end),
            ["call_id", "offered_at", "accepted_at", "ended_at", "is_video", "is_group", "outcome"],
        )
    ]
    return out
