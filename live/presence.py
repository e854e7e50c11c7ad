"""Attendant presence: online / away / offline from the console's heartbeats (last seen).

An attendant is ``online`` when seen within ``presence_away_minutes`` and not marked away,
``away`` until ``presence_offline_minutes``, then ``offline``. Round-robin routing
(:func:`live.assignment.pick_round_robin`) uses :func:`routable` so it only picks online attendants;
an attendant that never sent a heartbeat (API-only deployments, no console) is not tracked and keeps
being routable.
"""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import ColumnElement, Engine, exists, not_, or_, select

from core.settings import Settings, get_settings
from core.utc import as_utc
from live.store_sql import upsert
from storage.ops_repo import get_attendant, list_attendants
from storage.tables import attendant_presence
from storage.tokens import TenantScope


def state(last_seen: datetime | None, away: bool, now: datetime, settings: Settings) -> str:
    if last_seen is None:
        return "offline"
    idle = now - as_utc(last_seen)
    if idle >= timedelta(minutes=settings.presence_offline_minutes):
        return "offline"
    if away or idle >= timedelta(minutes=settings.presence_away_minutes):
        return "away"
    return "online"


def heartbeat(
    engine: Engine, scope: TenantScope, attendant_id: str, now: datetime, *, away: bool = False
) -> dict[str, Any]:
    """Record activity of the caller's attendant (404 for another tenant's)."""
    get_attendant(engine, scope, attendant_id)
    with engine.begin() as conn:
        conn.execute(
            upsert(conn, attendant_presence, ["attendant_id"], ["last_seen_at", "away"]).values(
                attendant_id=attendant_id, last_seen_at=now, away=away
            )
        )
    return {"attendant_id": attendant_id, "last_seen_at": now, "state": state(now, away, now, get_settings())}


def presence_list(
    engine: Engine, scope: TenantScope, now: datetime, settings: Settings, instance_id: str | None = None
) -> list[dict[str, Any]]:
    people = list_attendants(engine, scope, instance_id)
    with engine.connect() as conn:
        seen = {
            r.attendant_id: r
            for r in conn.execute(
                select(attendant_presence).where(attendant_presence.c.attendant_id.in_([p["id"] for p in people]))
            )
        }
    out = []
    for p in people:
        row = seen.get(p["id"])
        last, away = (row.last_seen_at, row.away) if row else (None, False)
        out.append(
            {
                "attendant_id": p["id"],
                "instance_id": p["instance_id"],
                "team_id": p["team_id"],
                "last_seen_at": as_utc(last),
                "state": state(last, away, now, settings),
                "open_conversations": p["open_conversations"],
                "capacity": p["capacity"],
            }
        )
    return out


def routable(attendant_id: Any, now: datetime, settings: Settings | None = None) -> ColumnElement[bool]:
    """SQL condition: the attendant is online, or has never been tracked by presence."""
    settings = settings or get_settings()
    p = attendant_presence.c
    cut = now - timedelta(minutes=settings.presence_away_minutes)
    tracked = exists(select(p.attendant_id).where(p.attendant_id == attendant_id))
    online = exists(
        select(p.attendant_id).where(p.attendant_id == attendant_id, p.away.is_(False), p.last_seen_at >= cut)
    )
    return or_(not_(tracked), online)
