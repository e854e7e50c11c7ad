"""Reconciliation of the live store with silver: the live view and the batch view must agree
(ARCHITECTURE.md principle 3). The Dagster asset check calls :func:`reconcile`.

Conversations are matched by id (the same ``core.identity.conversation_id`` on both sides) and
compared field by field; conversations on one side only are listed too.

Both sides are compared at one as-of instant. Each closes quiet conversations by the inactivity rule
(docs/metrics.md → Conversations) at its own as-of: silver at its run's (``silver/_state``), the live
store at its last periodic sweep's. A conversation the rule closed between the two instants is still
``open`` on the side that looked earlier — a difference of timing, not of rules. So the open
conversations of both sides are brought to the later of the two as-ofs with the live store's rule
(:func:`live.sessions.closed_by`, the rule the sweep applies), and the report says how many were.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

import pyarrow as pa
import pyarrow.compute as pc
from sqlalchemy import Engine, select

from core.settings import Settings, get_settings
from core.utc import as_utc, utc_row
from live import sessions as ss
from live.store_sql import live_as_of
from silver.state import SilverState
from storage.lake import Lake
from storage.tables import conversations

SILVER_CONVERSATIONS = "silver/conversations"
FIELDS = (
    "instance_id",
    "contact_key",
    "origin",
    "opening_message_id",
    "opened_at",
    "status",
    "first_response_message_id",
    "first_responder_id",
    "resolved_at",
    "assignee_id",
    "team_id",
    "inbound_count",
    "outbound_count",
    "previous_conversation_id",
    "is_reopen",
)
RULE_INPUTS = ("origin", "first_response_at", "opened_at", "last_message_at", "status")  # of closed_by


@dataclass
class ReconcileReport:
    checked: int = 0
    only_live: list[str] = field(default_factory=list)
    only_silver: list[str] = field(default_factory=list)
    mismatches: list[tuple[str, str, Any, Any]] = field(default_factory=list)  # (id, field, live, silver)
    as_of: datetime | None = None  # the instant both sides were compared at (None: each its own)
    closed_at_as_of: dict[str, int] = field(default_factory=dict)  # side → open ones the rule closed by then

    @property
    def ok(self) -> bool:
        return not (self.only_live or self.only_silver or self.mismatches)

    def summary(self) -> dict[str, Any]:
        fields: dict[str, int] = {}
        for _id, name, _l, _s in self.mismatches:
            fields[name] = fields.get(name, 0) + 1
        return {
            "checked": self.checked,
            "only_live": len(self.only_live),
            "only_silver": len(self.only_silver),
            "mismatched_conversations": len({m[0] for m in self.mismatches}),
            "mismatched_fields": fields,
            "as_of": self.as_of.isoformat() if self.as_of else None,
            "closed_at_as_of": dict(self.closed_at_as_of),
        }


def _norm(value: Any) -> Any:
    if isinstance(value, datetime):
        return as_utc(value).replace(microsecond=0)
    return value


def reconcile(
    engine: Engine,
    lake: Lake,
    *,
    instance_ids: list[str] | None = None,
    opened_after: datetime | None = None,
    fields: tuple[str, ...] = FIELDS,
    same_as_of: bool = True,
    settings: Settings | None = None,
) -> ReconcileReport:
    """Compare live ``conversations`` with ``silver/conversations`` (optionally a subset), both at the
    later of their as-of instants (``same_as_of=False``: as each side stands)."""
    report = ReconcileReport()
    columns = list(dict.fromkeys([*fields, *RULE_INPUTS]))
    dt = lake.open_or_none(SILVER_CONVERSATIONS)
    silver: dict[str, dict[str, Any]] = {}
    if dt is not None:
        table = pa.table(lake.dataset(SILVER_CONVERSATIONS, dt).to_table(columns=["conversation_id", *columns]))
        if instance_ids:
            table = table.filter(pc.is_in(table["instance_id"].cast(pa.string()), pa.array(instance_ids)))
        for row in table.to_pylist():
            if opened_after and _norm(row["opened_at"]) < _norm(opened_after):
                continue
            silver[row["conversation_id"]] = {k: as_utc(v) for k, v in row.items()}
    q = select(conversations.c.id, *[conversations.c[f] for f in columns])
    if instance_ids:
        q = q.where(conversations.c.instance_id.in_(instance_ids))
    if opened_after:
        q = q.where(conversations.c.opened_at >= opened_after)
    with engine.connect() as conn:
        live = {r.id: utc_row(r) for r in conn.execute(q)}
        live_instant = live_as_of(conn)
    if same_as_of:
        silver_instant = SilverState.load(lake).as_of
        report.as_of = max(live_instant, as_utc(silver_instant)) if silver_instant is not None else live_instant
        policy = ss.Policy.from_settings(settings or get_settings())
        report.closed_at_as_of = {
            "live": _close_at(live.values(), report.as_of, policy),
            "silver": _close_at(silver.values(), report.as_of, policy),
        }
    report.only_live = sorted(set(live) - set(silver))
    report.only_silver = sorted(set(silver) - set(live))
    for cid in sorted(set(live) & set(silver)):
        report.checked += 1
        for name in fields:
            a, b = _norm(live[cid][name]), _norm(silver[cid][name])
            if a != b and not (name == "is_reopen" and not a and not b):
                report.mismatches.append((cid, name, a, b))
    return report


def _close_at(rows: Any, at: datetime, policy: ss.Policy) -> int:
    """Close (in place) the open conversations the inactivity rule has closed by ``at``; how many."""
    closed = 0
    for conv in rows:
        if conv["status"] == "open" and (status := ss.closed_by(conv, at, policy)) is not None:
            ss.close(conv, status, policy)
            closed += 1
    return closed
