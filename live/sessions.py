"""Sessionization of the live store, in memory: one conversation row (a dict) at a time.

Pure functions that follow ``docs/metrics.md`` → Conversations and Clocks; the projector loads rows,
calls these and writes the rows back. Conversation ids come from
:func:`core.identity.conversation_id`, so a live conversation and its silver twin share an id.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from core.identity import conversation_id
from core.settings import Settings
from live.parse import Message

Conversation = dict[str, Any]

# Columns the projector owns (message-driven); actions own assignee/team/status/resolution.
MESSAGE_COLUMNS = (
    "chat_jid",
    "first_response_at",
    "first_response_message_id",
    "first_responder_id",
    "last_message_at",
    "last_inbound_at",
    "awaiting_since",
    "inbound_count",
    "outbound_count",
)
ACTION_COLUMNS = (
    "status",
    "resolved_at",
    "resolved_by",
    "expired_at",
    "closed_at",
    "first_assigned_at",
    "assignee_id",
    "team_id",
    "reopened",
    "version",
)
ASSIGNING = frozenset({"assign", "transfer", "route"})
CONVERSATION_ACTIONS = frozenset({"assign", "transfer", "unassign", "resolve", "reopen", "route"})


@dataclass(frozen=True)
class Policy:
    """Session timeouts (``BEAZAP_SESSION_TIMEOUT_HOURS`` / ``BEAZAP_REOPEN_WINDOW_HOURS`` /
    ``BEAZAP_ABANDON_AFTER_HOURS``)."""

    timeout: timedelta = timedelta(hours=24)
    reopen_window: timedelta = timedelta(hours=24)
    abandon_after: timedelta = timedelta(days=7)

    @classmethod
    def from_settings(cls, settings: Settings) -> Policy:
        return cls(
            timeout=timedelta(hours=settings.session_timeout_hours),
            reopen_window=timedelta(hours=settings.reopen_window_hours),
            abandon_after=timedelta(hours=settings.abandon_after_hours),
        )


def waiting(conv: Conversation) -> bool:
    """Customer-opened and not answered yet: its first-response clock is running."""
    return conv["origin"] == "inbound" and conv["first_response_at"] is None


def closed_by(conv: Conversation, at: datetime, policy: Policy) -> str | None:
    """``abandoned`` / ``expired`` when the inactivity rule has closed ``conv`` (not resolved) by ``at``,
    else None (``METRICS.md`` → Conversations): a conversation waiting for its first response never
    expires by inactivity and is abandoned once ``abandon_after`` passed since it opened; any other
    expires once ``timeout`` passed since its last message."""
    if waiting(conv):
        return "abandoned" if at - conv["opened_at"] > policy.abandon_after else None
    return "expired" if at - conv["last_message_at"] > policy.timeout else None


def close(conv: Conversation, status: str, policy: Policy) -> None:
    """Close ``conv`` by the inactivity rule: expired → ``closed_at`` = last message, ``expired_at`` =
    that + timeout; abandoned → both at opening + abandonment limit."""
    conv["status"] = status
    if status == "abandoned":
        conv["closed_at"] = conv["expired_at"] = conv["opened_at"] + policy.abandon_after
    else:
        conv["closed_at"] = conv["last_message_at"]
        conv["expired_at"] = conv["last_message_at"] + policy.timeout


def open_conversation(message: Message, previous: Conversation | None, policy: Policy) -> Conversation:
    """A new conversation opened by ``message`` (inbound → origin inbound, else outbound)."""
    is_reopen = bool(
        previous is not None
        and message.direction == "inbound"
        and previous["status"] == "resolved"
        and previous["resolved_at"] is not None
        and message.timestamp - previous["resolved_at"] <= policy.reopen_window
    )
    if is_reopen and previous is not None:
        previous["reopened"] = True
    return {
        "id": conversation_id(message.instance_id, message.contact_key, message.message_id),
        "instance_id": message.instance_id,
        "contact_key": message.contact_key,
        "chat_jid": message.chat_jid,
        "origin": message.direction,
        "opening_message_id": message.message_id,
        "opened_at": message.timestamp,
        "first_response_at": None,
        "first_response_message_id": None,
        "first_responder_id": None,
        "last_message_at": message.timestamp,
        "last_inbound_at": None,
        "awaiting_since": None,
        "status": "open",
        "resolved_at": None,
        "resolved_by": None,
        "expired_at": None,
        "closed_at": None,
        "first_assigned_at": None,
        "assignee_id": None,
        "team_id": None,
        "inbound_count": 0,
        "outbound_count": 0,
        "previous_conversation_id": previous["id"] if previous else None,
        "is_reopen": is_reopen,
        "reopened": False,
        "version": 1,
    }


def place(latest: Conversation | None, message: Message, policy: Policy) -> str:
    """Where ``message`` goes given the contact's latest conversation: ``attach`` or ``new``.

    Closes ``latest`` (in place) when the message comes after the inactivity rule closed it, and
    revives an expired or abandoned conversation when a late message lands before it closed.
    """
    if latest is None:
        return "new"
    ts = message.timestamp
    if ts < latest["opened_at"]:
        return "attach"  # late message older than the conversation: best effort, kept with it
    if latest["status"] == "open":
        status = closed_by(latest, ts, policy)
        if status is not None:
            close(latest, status, policy)
            return "new"
        return "attach"
    if latest["status"] == "resolved":
        return "attach" if latest["resolved_at"] is not None and ts <= latest["resolved_at"] else "new"
    # expired / abandoned
    if closed_by(latest, ts, policy) is None:
        latest["status"] = "open"
        latest["expired_at"] = None
        latest["closed_at"] = None
        return "attach"
    return "new"


def add_message(conv: Conversation, message: Message, *, automated: bool, sender_attendant_id: str | None) -> None:
    """Count ``message`` in ``conv`` and move its clocks (automated messages never stop a clock)."""
    ts = message.timestamp
    conv["chat_jid"] = message.chat_jid or conv["chat_jid"]
    if ts > conv["last_message_at"]:
        conv["last_message_at"] = ts
    if message.direction == "inbound":
        conv["inbound_count"] += 1
        if conv["last_inbound_at"] is None or ts > conv["last_inbound_at"]:
            conv["last_inbound_at"] = ts
        if conv["awaiting_since"] is None and conv["status"] == "open":
            conv["awaiting_since"] = ts
        return
    conv["outbound_count"] += 1
    if automated:
        return
    if conv["origin"] == "inbound" and ts >= conv["opened_at"]:
        first = conv["first_response_at"]
        if first is None or ts < first:
            conv["first_response_at"] = ts
            conv["first_response_message_id"] = message.message_id
            conv["first_responder_id"] = sender_attendant_id or conv["assignee_id"] or "unattributed"
    if conv["awaiting_since"] is not None and ts >= conv["awaiting_since"]:
        conv["awaiting_since"] = None


def accepts_action(conv: Conversation | None, action: str, occurred_at: datetime, policy: Policy) -> bool:
    """Whether ``conv`` is the conversation an action at ``occurred_at`` applies to: it was open then
    (not resolved before it, not closed by the inactivity rule — the rule silver applies too)."""
    if conv is None or conv["opened_at"] > occurred_at:
        return False
    if action == "reopen":
        return conv["status"] == "resolved"
    if conv["status"] == "resolved":
        return conv["closed_at"] is None or conv["closed_at"] >= occurred_at
    return closed_by(conv, occurred_at, policy) is None


def apply_action(conv: Conversation, action: dict[str, Any]) -> bool:
    """Apply an assign/transfer/unassign/resolve/reopen/route action; False when it changes nothing."""
    kind = action["action"]
    at = action["occurred_at"]
    if kind in ASSIGNING:
        attendant = action.get("attendant_id")
        team = action.get("team_id")
        if kind == "transfer" or attendant:
            conv["assignee_id"] = attendant
        if team or kind == "transfer":
            conv["team_id"] = team
        if attendant and (conv["first_assigned_at"] is None or at < conv["first_assigned_at"]):
            conv["first_assigned_at"] = at
    elif kind == "unassign":
        conv["assignee_id"] = None
    elif kind == "resolve":
        if conv["status"] == "resolved":
            return False
        conv["status"] = "resolved"
        conv["resolved_at"] = at
        conv["resolved_by"] = action.get("actor_id") or action.get("attendant_id")
        conv["closed_at"] = at
        conv["expired_at"] = None
        conv["awaiting_since"] = None
    elif kind == "reopen":
        if conv["status"] == "open":
            return False
        conv["status"] = "open"
        conv["resolved_at"] = None
        conv["resolved_by"] = None
        conv["closed_at"] = None
        conv["expired_at"] = None
    else:
        return False
    conv["version"] = int(conv.get("version") or 1) + 1
    return True
