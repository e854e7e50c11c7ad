"""Ground truth: what silver and gold must compute from the simulated traffic (``docs/metrics.md``).

The simulator keeps a clean timeline of what really happened (each message once, at its event time,
plus the operational actions). :func:`sessionize` cuts it into conversations with the rules of
``docs/metrics.md`` → Conversations, written plainly in Python so it is an independent reference for the
SQL in silver and the live projector:

- per contact, items ordered by time (the generator never lets two items of a chat share a time);
- a message opens a conversation when none is open: no previous message, the open conversation was
  resolved, or it closed before the message — a conversation waiting for its first response
  (customer-opened, not answered yet) never expires by inactivity and closes as ``abandoned`` once
  the abandonment limit passed since it opened; any other closes as ``expired`` once the session
  timeout passed since its last message;
- an action applies to the conversation open at its time (same rule):
  ``resolve`` closes it (first one wins until a ``reopen``); while it is not resolved a ``transfer``
  sets the assignee and team, an ``assign`` sets the assignee and — only when it names one — the team
  (an assign without a team keeps the current team, as silver and the live store do), ``unassign``
  clears the assignee (the team keeps it);
- status at the run's as-of instant (the latest instant bronze holds): ``resolved``, else
  ``abandoned`` / ``expired`` by the rule above, else ``open``; expired: ``expired_at`` = last
  message + timeout and ``closed_at`` = last message time; abandoned: both = opening + limit;
- first response = first non-automated outbound of an inbound-origin conversation; its responder is
  the BeaZap sender, else the assignee at that moment, else ``unattributed``;
- ``previous_conversation_id`` links every conversation to the contact's previous one; ``is_reopen``
  when the previous one was resolved and this one opened (inbound) within the reopen window.
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass, field, fields
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from core.identity import conversation_id as make_conversation_id


def ts(epoch: float | None) -> datetime | None:
    return None if epoch is None else datetime.fromtimestamp(epoch, UTC)


@dataclass
class TrueConversation:
    """One conversation with the silver ``conversations`` columns."""

    conversation_id: str
    instance_id: str
    contact_key: str
    chat_jid: str
    origin: str
    opening_message_id: str
    opened_at: datetime
    first_response_at: datetime | None
    first_response_message_id: str | None
    first_responder_id: str | None
    last_message_at: datetime
    last_inbound_at: datetime | None
    status: str
    resolved_at: datetime | None
    resolved_by: str | None
    expired_at: datetime | None
    closed_at: datetime | None
    first_assigned_at: datetime | None
    assignee_id: str | None
    team_id: str | None
    inbound_count: int
    outbound_count: int
    previous_conversation_id: str | None
    is_reopen: bool
    reopened: bool
    opened_month: str


@dataclass
class TrueMessage:
    """One message (reactions, edits and revokes are attached, not messages)."""

    instance_id: str
    message_id: str
    direction: str
    kind: str
    chat_type: str
    event_at: datetime
    automated: bool
    sender_attendant_id: str | None  # attendant who sent it through BeaZap (None for automated sends)
    revoked: bool
    edited: bool
    status: str  # pending|server_ack|delivery_ack|read|played
    contact_key: str | None  # direct chats
    conversation_id: str | None  # direct chats
    via: str  # customer | app | api
    attendant_id: str | None  # attribution of human outbound: sender, else assignee, else 'unattributed'
    team_id: str | None
    text: str | None  # final text (after edits), caption for media
    reaction_count: int = 0
    last_reaction: str | None = None


@dataclass
class TrueCall:
    instance_id: str
    call_id: str
    chat_jid: str
    contact_key: str
    is_video: bool
    is_group: bool
    offered_at: datetime
    accepted_at: datetime | None
    ended_at: datetime | None
    outcome: str  # accepted | rejected | missed


_TS_FIELDS = {
    cls: {f.name for f in fields(cls) if "datetime" in str(f.type)} for cls in (TrueConversation, TrueMessage, TrueCall)
}


def _enc(obj: Any) -> Any:
    if isinstance(obj, datetime):
        return obj.isoformat()
    raise TypeError(f"not JSON serializable: {type(obj)!r}")


def _row(cls: type, raw: dict[str, Any]) -> Any:
    for name in _TS_FIELDS[cls]:
        if raw.get(name) is not None:
            raw[name] = datetime.fromisoformat(raw[name])
    return cls(**raw)


@dataclass
class GroundTruth:
    """Everything the metrics must come out to for one simulation."""

    conversations: list[TrueConversation] = field(default_factory=list)
    messages: list[TrueMessage] = field(default_factory=list)
    calls: list[TrueCall] = field(default_factory=list)
    # [{instance_id, day, direction, kind, chat_type, messages}] by event day in the instance zone
    daily_volume: list[dict[str, Any]] = field(default_factory=list)
    # [{instance_id, day, hour, direction, chat_type, messages}]
    hourly_volume: list[dict[str, Any]] = field(default_factory=list)
    # [{instance_id, day, opened, opened_inbound, opened_outbound, resolved, expired, abandoned, reopened}]
    # each by its own event day (instance zone); opened_inbound/outbound by the conversation's origin
    daily_conversations: list[dict[str, Any]] = field(default_factory=list)
    # [{instance_id, day, edited, revoked, reactions, <kind>: messages…}] by the message's event day
    daily_activity: list[dict[str, Any]] = field(default_factory=list)
    # [{instance_id, day, contacts, new, returning}]: direct-chat contacts with messages that day, new on
    # the day of their first message ever in the instance
    daily_contacts: list[dict[str, Any]] = field(default_factory=list)
    as_of: datetime | None = None  # the as-of instant statuses are decided at (latest instant bronze holds)
    config: dict[str, Any] = field(default_factory=dict)

    def to_json(self, path: str | Path) -> Path:
        path = Path(path)
        path.parent.mkdir(parents=True, exist_ok=True)
        doc = {
            "config": self.config,
            "as_of": self.as_of.isoformat() if self.as_of else None,
            "conversations": [asdict(c) for c in self.conversations],
            "messages": [asdict(m) for m in self.messages],
            "calls": [asdict(c) for c in self.calls],
            "daily_volume": self.daily_volume,
            "hourly_volume": self.hourly_volume,
            "daily_conversations": self.daily_conversations,
            "daily_activity": self.daily_activity,
            "daily_contacts": self.daily_contacts,
        }
        path.write_text(json.dumps(doc, default=_enc, ensure_ascii=False, separators=(",", ":")), encoding="utf-8")
        return path

    @classmethod
    def from_json(cls, path: str | Path) -> GroundTruth:
        doc = json.loads(Path(path).read_text(encoding="utf-8"))
        return cls(
            conversations=[_row(TrueConversation, r) for r in doc["conversations"]],
            messages=[_row(TrueMessage, r) for r in doc["messages"]],
            calls=[_row(TrueCall, r) for r in doc["calls"]],
            daily_volume=doc.get("daily_volume", []),
            hourly_volume=doc.get("hourly_volume", []),
            daily_conversations=doc.get("daily_conversations", []),
            daily_activity=doc.get("daily_activity", []),
            daily_contacts=doc.get("daily_contacts", []),
            as_of=datetime.fromisoformat(doc["as_of"]) if doc.get("as_of") else None,
            config=doc.get("config", {}),
        )

    def conversation_by_id(self) -> dict[str, TrueConversation]:
        return {c.conversation_id: c for c in self.conversations}


# --- reference sessionizer --------------------------------------------------------------------------


@dataclass
class TLMessage:
    """A direct-chat message on the clean timeline."""

    t: float
    message_id: str
    direction: str
    automated: bool
    sender_attendant_id: str | None
    chat_jid: str


@dataclass
class TLAction:
    t: float
    action_id: str
    action: str
    actor_id: str | None
    attendant_id: str | None
    team_id: str | None


@dataclass
class _Open:
    opened_at: float
    origin: str
    opening_id: str
    chat_jid: str
    last_msg: float
    last_inbound: float | None = None
    inbound: int = 0
    outbound: int = 0
    fr_at: float | None = None
    fr_id: str | None = None
    fr_by: str | None = None
    resolved_at: float | None = None
    resolved_by: str | None = None
    first_assigned_at: float | None = None
    assignee: str | None = None
    team: str | None = None
    message_ids: list[str] = field(default_factory=list)
    attribution: dict[str, tuple[str | None, str | None]] = field(default_factory=dict)


def sessionize(
    instance_id: str,
    contact_key: str,
    timeline: list[TLMessage | TLAction],
    *,
    timeout_s: float,
    reopen_s: float,
    abandon_s: float,
    as_of: float,
    team_of: dict[str, str],
) -> tuple[list[TrueConversation], dict[str, tuple[str, str | None, str | None]], dict[str, str]]:
    """Conversations of one contact; per message id its (conversation id, attendant, team) attribution;
    per action id the conversation it applied to (actions with no open conversation are left out)."""
    order = {"inbound": 0, "outbound": 1}
    action_session: dict[str, int] = {}
    items = sorted(
        timeline,
        key=lambda it: (
            it.t,
            order[it.direction] if isinstance(it, TLMessage) else 2,
            getattr(it, "message_id", "") or getattr(it, "action_id", ""),
        ),
    )

    def closed_by(s: _Open, t: float) -> str | None:
        """``abandoned`` / ``expired`` when ``s`` (not resolved) is closed at ``t``, else None."""
        if s.origin == "inbound" and s.fr_at is None:
            return "abandoned" if t - s.opened_at > abandon_s else None
        return "expired" if t - s.last_msg > timeout_s else None

    sessions: list[_Open] = []
    cur: _Open | None = None
    for it in items:
        if isinstance(it, TLMessage):
            if cur is None or cur.resolved_at is not None or closed_by(cur, it.t):
                cur = _Open(
                    opened_at=it.t, origin=it.direction, opening_id=it.message_id, chat_jid=it.chat_jid, last_msg=it.t
                )
                sessions.append(cur)
            cur.last_msg = it.t
            cur.chat_jid = it.chat_jid
            cur.message_ids.append(it.message_id)
            if it.direction == "inbound":
                cur.inbound += 1
                cur.last_inbound = it.t
                cur.attribution[it.message_id] = (None, None)
            else:
                cur.outbound += 1
                if it.automated:
                    cur.attribution[it.message_id] = (None, None)
                else:
                    who = it.sender_attendant_id or cur.assignee or "unattributed"
                    cur.attribution[it.message_id] = (who, team_of.get(who))
                    if cur.origin == "inbound" and cur.fr_at is None:
                        cur.fr_at, cur.fr_id, cur.fr_by = it.t, it.message_id, who
            continue
        if cur is None or closed_by(cur, it.t):
            continue  # no conversation open: the action applies to nothing
        action_session[it.action_id] = len(sessions) - 1
        if it.action == "resolve":
            if cur.resolved_at is None:
                cur.resolved_at, cur.resolved_by = it.t, it.actor_id
        elif it.action == "reopen":
            cur.resolved_at = cur.resolved_by = None
        elif it.action in ("assign", "transfer", "unassign") and cur.resolved_at is None:
            if it.action == "unassign":
                cur.assignee = None  # back to the team's queue: the team stays
            else:
                if it.action == "transfer" or it.attendant_id is not None:
                    cur.assignee = it.attendant_id
                if it.action == "transfer" or it.team_id is not None:
                    cur.team = it.team_id
                if it.attendant_id is not None and cur.first_assigned_at is None:
                    cur.first_assigned_at = it.t
    out: list[TrueConversation] = []
    attribution: dict[str, tuple[str, str | None, str | None]] = {}
    prev: TrueConversation | None = None
    for s in sessions:
        cid = make_conversation_id(instance_id, contact_key, s.opening_id)
        status = "resolved" if s.resolved_at is not None else closed_by(s, as_of) or "open"
        ended = {"expired": s.last_msg + timeout_s, "abandoned": s.opened_at + abandon_s}.get(status)
        is_reopen = bool(
            prev is not None
            and s.origin == "inbound"
            and prev.status == "resolved"
            and prev.resolved_at is not None
            and s.opened_at - prev.resolved_at.timestamp() <= reopen_s
        )
        if prev is not None and is_reopen:
            prev.reopened = True
        opened = ts(s.opened_at)
        assert opened is not None
        conv = TrueConversation(
            conversation_id=cid,
            instance_id=instance_id,
            contact_key=contact_key,
            chat_jid=s.chat_jid,
            origin=s.origin,
            opening_message_id=s.opening_id,
            opened_at=opened,
            first_response_at=ts(s.fr_at),
            first_response_message_id=s.fr_id,
            first_responder_id=s.fr_by,
            last_message_at=ts(s.last_msg),  # type: ignore[arg-type]
            last_inbound_at=ts(s.last_inbound),
            status=status,
            resolved_at=ts(s.resolved_at),
            resolved_by=s.resolved_by,
            expired_at=ts(ended),
            closed_at=ts(s.resolved_at)
            if status == "resolved"
            else ts(s.last_msg)
            if status == "expired"
            else ts(ended),
            first_assigned_at=ts(s.first_assigned_at),
            assignee_id=s.assignee,
            team_id=s.team,
            inbound_count=s.inbound,
            outbound_count=s.outbound,
            previous_conversation_id=prev.conversation_id if prev else None,
            is_reopen=is_reopen,
            reopened=False,
            opened_month=opened.strftime("%Y-%m"),
        )
        out.append(conv)
        for mid in s.message_ids:
            who, team = s.attribution[mid]
            attribution[mid] = (cid, who, team)
        prev = conv
    actions = {aid: out[idx].conversation_id for aid, idx in action_session.items()}
    return out, attribution, actions
