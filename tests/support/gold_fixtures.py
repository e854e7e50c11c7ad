"""Small hand-made silver tables for gold tests, docs examples and benchmarks.

:func:`write_silver` fills any missing column with null so a test states only what it cares about,
and writes rows with the exact silver Arrow schemas (``silver/schema.py``).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from datetime import datetime
from typing import Any

import pyarrow as pa

from silver import schema as s
from storage.lake import Lake

TABLES = {
    "messages": (s.MESSAGES, s.MESSAGES_SCHEMA, s.MESSAGES_PARTITIONS),
    "conversations": (s.CONVERSATIONS, s.CONVERSATIONS_SCHEMA, s.CONVERSATIONS_PARTITIONS),
    "calls": (s.CALLS, s.CALLS_SCHEMA, None),
    "ops_events": (s.OPS_EVENTS, s.OPS_EVENTS_SCHEMA, None),
}


def to_table(rows: Iterable[Mapping[str, Any]], schema: pa.Schema) -> pa.Table:
    rows = list(rows)
    columns = {f.name: [r.get(f.name) for r in rows] for f in schema}
    return pa.table(columns, schema=schema)


def write_silver(lake: Lake, name: str, rows: Iterable[Mapping[str, Any]], mode: str = "overwrite") -> None:
    """Write ``rows`` (dicts) as silver table ``name`` (messages, conversations, calls, ops_events)."""
    table, schema, partitions = TABLES[name]
    rows = [dict(r) for r in rows]
    for r in rows:
        if name == "messages" and r.get("event_at") is not None:
            r.setdefault("event_month", _month(r["event_at"]))
        if name == "conversations" and r.get("opened_at") is not None:
            r.setdefault("opened_month", _month(r["opened_at"]))
        if name == "calls" and r.get("offered_at") is not None:
            r.setdefault("event_month", _month(r["offered_at"]))
    lake.write(table, to_table(rows, schema), mode=mode, partition_by=partitions)


def _month(ts: datetime) -> str:
    return ts.strftime("%Y-%m")


def synthetic(
    lake: Lake,
    *,
    instances: list[str],
    start: datetime,
    days: int = 7,
    per_day: int = 6,
    seed: int = 7,
    as_of: datetime | None = None,
) -> dict[str, list[dict[str, Any]]]:
    """Write a small, internally consistent silver lake (messages, conversations, ops events, calls).

    Each conversation opens with an inbound message, may get an automated reply, a human first response,
    a few more exchanges, and is resolved, expired or still open at ``as_of``. Returns the rows written.
    """
    import random
    from datetime import timedelta

    rng = random.Random(seed)
    as_of = as_of or start + timedelta(days=days + 2)
    out: dict[str, list[dict[str, Any]]] = {"messages": [], "conversations": [], "ops_events": [], "calls": []}
    kinds = ["text", "text", "text", "image", "audio", "document"]
    for inst in instances:
        attendants = [(f"{inst}-att{i}", f"{inst}-team{i % 2}") for i in range(3)]
        for day in range(days):
            for n in range(per_day):
                cid = f"{inst}-c{day}-{n}"
                contact = f"+55119{rng.randrange(10**7, 10**8)}"
                opened = start + timedelta(days=day, seconds=rng.randrange(0, 86400))
                if opened >= as_of:
                    continue
                seq = 0

                def msg(
                    direction: str,
                    at: datetime,
                    attendant: str | None = None,
                    automated: bool = False,
                    *,
                    _cid: str = cid,
                    _contact: str = contact,
                    _inst: str = inst,
                ) -> dict[str, Any]:
                    nonlocal seq
                    seq += 1
                    row = {
                        "instance_id": _inst,
                        "message_id": f"{_cid}-m{seq}",
                        "chat_jid": _contact[1:] + "@s.whatsapp.net",
                        "chat_type": "direct",
                        "contact_key": _contact,
                        "direction": direction,
                        "kind": rng.choice(kinds),
                        "event_at": at,
                        "automated": automated,
                        "sender_attendant_id": attendant,
                        "conversation_id": _cid,
                        "revoked": False,
                        "edited": False,
                    }
                    out["messages"].append(row)
                    return row

                att, team = rng.choice(attendants)
                msg("inbound", opened)
                t = opened
                if rng.random() < 0.5:
                    msg("outbound", opened + timedelta(seconds=5), automated=True)
                assigned = opened + timedelta(seconds=rng.randrange(10, 600))
                out["ops_events"].append(
                    {
                        "action_id": f"{cid}-assign",
                        "instance_id": inst,
                        "conversation_id": cid,
                        "contact_key": contact,
                        "action": "assign",
                        "actor_id": "system",
                        "attendant_id": att,
                        "team_id": team,
                        "occurred_at": assigned,
                    }
                )
                first_response = None
                if rng.random() < 0.85:
                    first_response = assigned + timedelta(seconds=int(rng.expovariate(1 / 1800)))
                    msg("outbound", first_response, att)
                    t = first_response
                    for _ in range(rng.randrange(0, 3)):
                        t = t + timedelta(seconds=rng.randrange(30, 7200))
                        msg("inbound", t)
                        if rng.random() < 0.8:
                            t = t + timedelta(seconds=int(rng.expovariate(1 / 900)) + 1)
                            msg("outbound", t, None if rng.random() < 0.3 else att)
                last = max(m["event_at"] for m in out["messages"] if m["conversation_id"] == cid)
                roll = rng.random()
                status, resolved_at, expired_at = "open", None, None
                if roll < 0.7 and last + timedelta(minutes=10) < as_of:
                    status, resolved_at = "resolved", last + timedelta(minutes=rng.randrange(1, 600))
                    if resolved_at > as_of:
                        status, resolved_at = "open", None
                elif roll < 0.85 and last + timedelta(hours=24) < as_of:
                    status, expired_at = "expired", last + timedelta(hours=24)
                msgs = [m for m in out["messages"] if m["conversation_id"] == cid]
                out["conversations"].append(
                    {
                        "conversation_id": cid,
                        "instance_id": inst,
                        "contact_key": contact,
                        "chat_jid": contact[1:] + "@s.whatsapp.net",
                        "origin": "inbound",
                        "opening_message_id": f"{cid}-m1",
                        "opened_at": opened,
                        "first_response_at": first_response,
                        "first_responder_id": att if first_response else None,
                        "last_message_at": last,
                        "status": status,
                        "resolved_at": resolved_at,
                        "resolved_by": att if resolved_at else None,
                        "expired_at": expired_at,
                        "closed_at": resolved_at or (last if expired_at else None),
                        "first_assigned_at": assigned,
                        "assignee_id": att,
                        "team_id": team,
                        "inbound_count": sum(1 for m in msgs if m["direction"] == "inbound"),
                        "outbound_count": sum(1 for m in msgs if m["direction"] == "outbound"),
                        "is_reopen": False,
                        "reopened": False,
                    }
                )
                if resolved_at:
                    out["ops_events"].append(
                        {
                            "action_id": f"{cid}-resolve",
                            "instance_id": inst,
                            "conversation_id": cid,
                            "contact_key": contact,
                            "action": "resolve",
                            "actor_id": att,
                            "attendant_id": att,
                            "team_id": team,
                            "occurred_at": resolved_at,
                        }
                    )
                if rng.random() < 0.2:
                    out["calls"].append(
                        {
                            "instance_id": inst,
                            "call_id": f"{cid}-call",
                            "contact_key": contact,
                            "is_video": rng.random() < 0.3,
                            "is_group": False,
                            "offered_at": opened - timedelta(minutes=1),
                            "outcome": rng.choice(["accepted", "rejected", "missed"]),
                        }
                    )
    for name, rows in out.items():
        write_silver(lake, name, rows)
    return out


def business_seconds_reference(a: datetime, b: datetime, timezone: str, business_hours: Any) -> float:
    """Business seconds of [a, b] by brute force with zoneinfo (an independent check of the SQL).

    Uses the schedule version in force on ``a``'s local day, wall-clock opening times (so DST days are
    honoured) and skips holidays. ``business_hours`` is a :class:`gold.config.BusinessHours`.
    """
    from datetime import time, timedelta
    from zoneinfo import ZoneInfo

    zone = ZoneInfo(timezone)
    start_day = a.astimezone(zone).date()
    version = [v for v in business_hours.versions if v.effective_from <= start_day][-1]
    holidays = set(business_hours.holidays)
    total = 0.0
    day = start_day - timedelta(days=1)
    while day <= b.astimezone(zone).date() + timedelta(days=1):
        if day not in holidays:
            for weekday, open_min, close_min in version.spans():
                if weekday != day.isoweekday():
                    continue
                lo = datetime.combine(day, time(open_min // 60, open_min % 60), zone)
                hi = (
                    datetime.combine(day + timedelta(days=1), time(0), zone)
                    if close_min == 1440
                    else datetime.combine(day, time(close_min // 60, close_min % 60), zone)
                )
                s, e = max(lo, a), min(hi, b)
                if e > s:
                    total += (e - s).total_seconds()
        day += timedelta(days=1)
    return total
