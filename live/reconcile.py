"""Reconciliation of the live store with silver: the live view and the batch view must agree
(ARCHITECTURE.md principle 3). The Dagster asset check calls :func:`reconcile`.

Conversations are matched by id (the same ``core.identity.conversation_id`` on both sides) and
compared field by field; conversations on one side only are listed too.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

import pyarrow as pa
import pyarrow.compute as pc
from sqlalchemy import Engine, select

from core.utc import as_utc
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


@dataclass
class ReconcileReport:
    checked: int = 0
    only_live: list[str] = field(default_factory=list)
    only_silver: list[str] = field(default_factory=list)
    mismatches: list[tuple[str, str, Any, Any]] = field(default_factory=list)  # (id, field, live, silver)

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
) -> ReconcileReport:
    """Compare live ``conversations`` with ``silver/conversations`` (optionally a subset)."""
    report = ReconcileReport()
    dt = lake.open_or_none(SILVER_CONVERSATIONS)
    silver: dict[str, dict[str, Any]] = {}
    if dt is not None:
        table = pa.table(lake.dataset(SILVER_CONVERSATIONS, dt).to_table(columns=["conversation_id", *fields]))
        if instance_ids:
            table = table.filter(pc.is_in(table["instance_id"].cast(pa.string()), pa.array(instance_ids)))
        for row in table.to_pylist():
            if opened_after and _norm(row["opened_at"]) < _norm(opened_after):
                continue
            silver[row["conversation_id"]] = row
    q = select(conversations.c.id, *[conversations.c[f] for f in fields])
    if instance_ids:
        q = q.where(conversations.c.instance_id.in_(instance_ids))
    if opened_after:
        q = q.where(conversations.c.opened_at >= opened_after)
    with engine.connect() as conn:
        live = {r.id: dict(r._mapping) for r in conn.execute(q)}
    report.only_live = sorted(set(live) - set(silver))
    report.only_silver = sorted(set(silver) - set(live))
    for cid in sorted(set(live) & set(silver)):
        report.checked += 1
        for name in fields:
            a, b = _norm(live[cid][name]), _norm(silver[cid][name])
            if a != b and not (name == "is_reopen" and not a and not b):
                report.mismatches.append((cid, name, a, b))
    return report
