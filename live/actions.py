"""Conversation actions taken in the operational store: assign, transfer, unassign, resolve, reopen,
route. Each runs in one transaction that updates the conversation with optimistic concurrency
(``version``) and appends to the action log (``source = 'store'``, later extracted to
``bronze/ops_events`` by :mod:`live.extract`). A concurrent conflicting action raises
:class:`~storage.ops_repo.ConflictError` (API: 409) instead of silently overwriting.
"""

from __future__ import annotations

import uuid
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import Connection, Engine, insert, select, update

from core.settings import get_settings
from core.utc import as_utc, utc_row
from live import sessions
from live.store_sql import live_as_of
from storage.ops_repo import ConflictError, InvalidError, NotFoundError
from storage.tables import actions, attendants, conversations, teams
from storage.tokens import TenantScope

ACTIONS = ("assign", "transfer", "unassign", "resolve", "reopen", "route")


def new_action_id() -> str:
    return "act_" + uuid.uuid4().hex


def act(
    engine: Engine,
    scope: TenantScope,
    conversation_id: str,
    action: str,
    *,
    actor_id: str | None,
    attendant_id: str | None = None,
    team_id: str | None = None,
    expected_version: int | None = None,
    details: dict[str, Any] | None = None,
    now: datetime | None = None,
) -> dict[str, Any]:
    """Apply ``action`` to a conversation of the caller's tenant and return the updated conversation."""
    if action not in ACTIONS:
        raise InvalidError(f"unknown action {action!r}")
    with engine.begin() as conn:
        return act_in(
            conn,
            scope,
            conversation_id,
            action,
            actor_id=actor_id,
            attendant_id=attendant_id,
            team_id=team_id,
            expected_version=expected_version,
            details=details,
            now=now,
        )


def act_in(
    conn: Connection,
    scope: TenantScope | None,
    conversation_id: str,
    action: str,
    *,
    actor_id: str | None,
    attendant_id: str | None = None,
    team_id: str | None = None,
    expected_version: int | None = None,
    details: dict[str, Any] | None = None,
    now: datetime | None = None,
) -> dict[str, Any]:
    """:func:`act` inside an open transaction (``scope`` None = trusted internal caller, e.g. routing)."""
    c = conversations
    q = select(c).where(c.c.id == conversation_id)
    if scope is not None:
        q = q.where(c.c.instance_id.in_(sorted(scope.instance_ids)))
    row = conn.execute(q).first()
    if row is None:
        raise NotFoundError(f"conversation not found: {conversation_id}")
    conv = utc_row(row)
    conv.pop("updated_at", None)
    if expected_version is not None and expected_version != conv["version"]:
        raise ConflictError(f"conversation changed (version {conv['version']}, expected {expected_version})")
    now = now or datetime.now(UTC)
    if conv["status"] == "open":  # the inactivity rule applies before the sweep gets to it (as in silver)
        policy = sessions.Policy.from_settings(get_settings())
        if (closing := sessions.closed_by(conv, live_as_of(conn, now), policy)) is not None:
            sessions.close(conv, closing, policy)
    _validate(conn, conv, action, attendant_id, team_id)
    if team_id is None and attendant_id and action in ("assign", "transfer", "route"):
        team_id = conn.execute(select(attendants.c.team_id).where(attendants.c.id == attendant_id)).scalar()
    record = {
        "action": action,
        "occurred_at": now,
        "actor_id": actor_id,
        "attendant_id": attendant_id if action != "resolve" else (attendant_id or conv["assignee_id"]),
        "team_id": team_id if action != "resolve" else conv["team_id"],
    }
    loaded_version = conv["version"]
    if not sessions.apply_action(conv, record):
        raise ConflictError(f"conversation is already {conv['status']}")
    values = {k: conv[k] for k in sessions.ACTION_COLUMNS} | {"updated_at": now}
    if action == "resolve":
        values["awaiting_since"] = None
    result = conn.execute(update(c).where(c.c.id == conversation_id, c.c.version == loaded_version).values(**values))
    if result.rowcount != 1:
        raise ConflictError("conversation changed concurrently; reload and retry")
    conn.execute(
        insert(actions).values(
            id=new_action_id(),
            instance_id=conv["instance_id"],
            conversation_id=conversation_id,
            contact_key=conv["contact_key"],
            action=action,
            actor_id=actor_id,
            attendant_id=record["attendant_id"],
            team_id=record["team_id"],
            occurred_at=now,
            details=details,
            source="store",
        )
    )
    if record["attendant_id"] and action in ("assign", "transfer", "route"):
        conn.execute(update(attendants).where(attendants.c.id == record["attendant_id"]).values(last_assigned_at=now))
    conv["updated_at"] = now
    return conv


def _validate(
    conn: Connection, conv: dict[str, Any], action: str, attendant_id: str | None, team_id: str | None
) -> None:
    if action in ("assign", "route") and not (attendant_id or team_id):
        raise InvalidError(f"{action} needs attendant_id or team_id")
    if action == "transfer" and not (attendant_id or team_id):
        raise InvalidError("transfer needs attendant_id or team_id")
    if action in ("assign", "transfer", "unassign", "route") and conv["status"] != "open":
        raise ConflictError(f"conversation is {conv['status']}")
    if action == "assign" and attendant_id and attendant_id == conv["assignee_id"]:
        raise ConflictError("conversation is already assigned to this attendant")
    if action == "reopen" and conv["status"] != "resolved":
        raise ConflictError(f"only resolved conversations can be reopened (it is {conv['status']})")
    if action == "resolve" and conv["status"] != "open":
        raise ConflictError(f"conversation is {conv['status']}")
    if attendant_id:
        row = conn.execute(
            select(attendants.c.instance_id, attendants.c.active).where(attendants.c.id == attendant_id)
        ).first()
        if row is None or row.instance_id != conv["instance_id"]:
            raise NotFoundError(f"attendant not found: {attendant_id}")
        if not row.active:
            raise InvalidError("attendant is inactive")
    if team_id:
        row = conn.execute(select(teams.c.instance_id).where(teams.c.id == team_id)).first()
        if row is None or row.instance_id != conv["instance_id"]:
            raise NotFoundError(f"team not found: {team_id}")


def last_action(engine: Engine, scope: TenantScope, conversation_id: str) -> dict[str, Any] | None:
    """Where a conversation of the caller's tenant stands and its latest action (who, what, when):
    what a 409 tells the person whose action lost the race. None for a conversation not theirs."""
    c, a = conversations, actions
    with engine.connect() as conn:
        conv = conn.execute(
            select(c.c.instance_id, c.c.version, c.c.status, c.c.assignee_id, c.c.team_id).where(
                c.c.id == conversation_id, c.c.instance_id.in_(sorted(scope.instance_ids))
            )
        ).first()
        if conv is None:
            return None
        row = conn.execute(
            select(a.c.action, a.c.actor_id, a.c.occurred_at)
            .where(a.c.conversation_id == conversation_id, a.c.instance_id == conv.instance_id)
            .where(a.c.action.in_(ACTIONS))
            .order_by(a.c.occurred_at.desc())
            .limit(1)
        ).first()
        name = None
        if row is not None and row.actor_id:
            name = conn.execute(
                select(attendants.c.name).where(
                    attendants.c.id == row.actor_id, attendants.c.instance_id == conv.instance_id
                )
            ).scalar()
    return {
        "version": conv.version,
        "status": conv.status,
        "assignee_id": conv.assignee_id,
        "team_id": conv.team_id,
        "action": row.action if row else None,
        "actor_id": row.actor_id if row else None,
        "actor_name": name,
        "at": as_utc(row.occurred_at) if row else None,
    }
