"""Auto-assignment of conversations behind a small pluggable :class:`Router` protocol.

The built-in router is round-robin within a team: among the team's active, available, online
(:mod:`live.presence`) attendants with fewer open conversations than their capacity, the one
assigned longest ago gets the conversation. Other routers (the LLM router) register with
:func:`register_router` and are chosen
per instance by ``instances.routing`` (``{"auto_assign": true, "router": "round_robin",
"default_team_id": "…"}``). Every decision is recorded as a ``route`` action with its source.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any, Protocol, runtime_checkable

from sqlalchemy import Connection, Engine, func, select

from core.logging import get_logger
from live.actions import act_in
from live.presence import routable
from storage.ops_repo import ConflictError, InvalidError, NotFoundError
from storage.tables import attendants, conversations, instances

log = get_logger(__name__)


@dataclass(frozen=True)
class RouteDecision:
    """Where a conversation goes. ``source`` is ``rule`` or ``llm`` (details of the route action)."""

    team_id: str | None
    attendant_id: str | None
    source: str = "rule"
    model: str | None = None
    confidence: float | None = None
    details: dict[str, Any] = field(default_factory=dict)


@runtime_checkable
class Router(Protocol):
    """Decides the team/attendant of a conversation. Must not commit; may read with ``conn``."""

    name: str

    def route(self, conn: Connection, conversation: dict[str, Any], *, team_id: str | None) -> RouteDecision | None:
        """A decision, or None to leave the conversation in the queue."""
        ...


_ROUTERS: dict[str, Callable[[], Router]] = {}


def register_router(name: str, factory: Callable[[], Router]) -> None:
    """Make a router available to instances whose ``routing.router`` is ``name``."""
    _ROUTERS[name] = factory


def get_router(name: str | None) -> Router:
    factory = _ROUTERS.get(name or "round_robin")
    if factory is None:
        raise InvalidError(f"unknown router {name!r}; known: {sorted(_ROUTERS)}")
    return factory()


def available_routers() -> list[str]:
    return sorted(_ROUTERS)


def lock_instance_routing(conn: Connection, instance_id: str) -> None:
    """Serialize capacity decisions of one instance until ``conn``'s transaction ends.

    Counting an attendant's open conversations and assigning one more is a read-then-write: two
    assigners at once could both see a free slot. PostgreSQL locks the instance row (each later
    statement of the transaction reads what the previous holder committed); SQLite takes the
    database write lock now (a no-op write), before the count is read.
    """
    if conn.dialect.name == "postgresql":
        conn.execute(select(instances.c.id).where(instances.c.id == instance_id).with_for_update())
    else:
        conn.exec_driver_sql("UPDATE instances SET id = id WHERE id = ?", (instance_id,))


def pick_round_robin(conn: Connection, instance_id: str, team_id: str | None) -> str | None:
    """The next attendant of ``team_id`` (or of the instance when None) with free capacity.

    Holds :func:`lock_instance_routing` for the rest of the caller's transaction, which must assign
    the attendant returned before it commits (capacity holds under concurrent assigners)."""
    lock_instance_routing(conn, instance_id)
    a, c = attendants, conversations
    load = select(func.count()).where(c.c.assignee_id == a.c.id, c.c.status == "open").correlate(a).scalar_subquery()
    q = select(a.c.id).where(
        a.c.instance_id == instance_id,
        a.c.active.is_(True),
        a.c.available.is_(True),
        load < a.c.capacity,
        routable(a.c.id, datetime.now(UTC)),  # presence: online (or never tracked)
    )
    if team_id is not None:
        q = q.where(a.c.team_id == team_id)
    q = q.order_by(a.c.last_assigned_at.is_not(None), a.c.last_assigned_at, a.c.id).limit(1)
    return conn.execute(q).scalar()


class RoundRobinRouter:
    """Round-robin within a team, respecting capacity and availability."""

    name = "round_robin"

    def route(self, conn: Connection, conversation: dict[str, Any], *, team_id: str | None) -> RouteDecision | None:
        attendant = pick_round_robin(conn, conversation["instance_id"], team_id)
        if attendant is None:
            return None
        return RouteDecision(team_id=team_id, attendant_id=attendant, source="rule", details={"router": self.name})


register_router("round_robin", RoundRobinRouter)


def assign_next(
    engine: Engine,
    conversation_id: str,
    *,
    scope: Any = None,
    team_id: str | None = None,
    router: Router | None = None,
    actor_id: str = "router",
) -> dict[str, Any] | None:
    """Route one conversation now; returns the updated conversation or None when nobody is free."""
    with engine.begin() as conn:
        row = conn.execute(select(conversations).where(conversations.c.id == conversation_id)).first()
        if row is None or (scope is not None and row.instance_id not in scope.instance_ids):
            raise NotFoundError(f"conversation not found: {conversation_id}")
        conv = dict(row._mapping)
        if conv["status"] != "open":
            raise ConflictError(f"conversation is {conv['status']}")
        routing = conn.execute(select(instances.c.routing).where(instances.c.id == conv["instance_id"])).scalar() or {}
        team = team_id or conv["team_id"] or routing.get("default_team_id")
        router = router or get_router(routing.get("router"))
        decision = router.route(conn, conv, team_id=team)
        if decision is None or not (decision.attendant_id or decision.team_id):
            return None
        details = {"source": decision.source, **decision.details}
        if decision.model:
            details["model"] = decision.model
        if decision.confidence is not None:
            details["confidence"] = decision.confidence
        return act_in(
            conn,
            scope,
            conversation_id,
            "route",
            actor_id=actor_id,
            attendant_id=decision.attendant_id,
            team_id=decision.team_id,
            details=details,
        )


def auto_assign(engine: Engine, conversation_ids: list[str]) -> int:
    """Route new conversations of instances with ``routing.auto_assign`` (the projector's hook)."""
    if not conversation_ids:
        return 0
    with engine.connect() as conn:
        rows = conn.execute(
            select(conversations.c.id, instances.c.routing)
            .join(instances, instances.c.id == conversations.c.instance_id)
            .where(conversations.c.id.in_(conversation_ids), conversations.c.assignee_id.is_(None))
        ).all()
    done = 0
    for conv_id, routing in rows:
        if not (routing or {}).get("auto_assign"):
            continue
        try:
            if assign_next(engine, conv_id) is not None:
                done += 1
        except (ConflictError, NotFoundError, InvalidError) as exc:
            log.info("assignment.skipped", reason=type(exc).__name__)
    return done
