"""Tenant-scoped repositories of the operational store: instances, teams, attendants, conversations.

Every function takes the caller's :class:`~storage.tokens.TenantScope` and only ever touches that
tenant's instances; an id of another tenant raises :class:`NotFoundError` (the API answers 404), so
foreign ids are not even confirmed to exist. Evolution API keys are stored encrypted and never
returned by these functions (only :func:`evolution_credentials` decrypts, for the Evolution client).
"""

from __future__ import annotations

import base64
import json
import uuid
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import Engine, and_, delete, false, func, insert, or_, select, update
from sqlalchemy.exc import IntegrityError

from core import instance_config
from core.utc import utc_row
from storage import secrets
from storage.instances import ensure_account
from storage.tables import attendants, conversations, instances, messages, teams
from storage.tokens import TenantScope


class NotFoundError(LookupError):
    """The id does not exist for this tenant (API: 404)."""


class ConflictError(Exception):
    """A concurrent or contradictory change (API: 409)."""


class InvalidError(ValueError):
    """A well-formed request that cannot be applied (API: 422)."""


def check_instance(scope: TenantScope, instance_id: str) -> str:
    if instance_id not in scope.instance_ids:
        raise NotFoundError(f"instance not found: {instance_id}")
    return instance_id


def scoped_instances(scope: TenantScope, requested: Iterable[str] | None = None) -> list[str]:
    wanted = [i for i in (requested or []) if i]
    for i in wanted:
        check_instance(scope, i)
    return sorted(set(wanted) if wanted else scope.instance_ids)


# ----------------------------------------------------------------------------------- instances
_PUBLIC_INSTANCE = (
    "id",
    "account_id",
    "display_name",
    "evolution_base_url",
    "evolution_instance_uuid",
    "timezone",
    "business_hours",
    "sla_policy",
    "routing",
    "active",
    "created_at",
    "updated_at",
)


def _public_instance(row: dict[str, Any]) -> dict[str, Any]:
    out = {k: row.get(k) for k in _PUBLIC_INSTANCE}
    out["evolution_api_key_set"] = bool(row.get("evolution_api_key_encrypted"))
    return out


def list_instances(engine: Engine, scope: TenantScope) -> list[dict[str, Any]]:
    with engine.connect() as conn:
        rows = conn.execute(
            select(instances).where(instances.c.account_id == scope.account_id).order_by(instances.c.id)
        )
        return [_public_instance(utc_row(r)) for r in rows]


def get_instance(engine: Engine, scope: TenantScope, instance_id: str) -> dict[str, Any]:
    with engine.connect() as conn:
        row = conn.execute(
            select(instances).where(instances.c.id == instance_id, instances.c.account_id == scope.account_id)
        ).first()
    if row is None:
        raise NotFoundError(f"instance not found: {instance_id}")
    return _public_instance(utc_row(row))


# Instance, team and attendant ids are one namespace across tenants (instance ids are the Evolution
# instance names webhooks are routed by). A taken id answers this, the same whoever holds it, so the
# answer never tells a tenant that another one uses the id (docs/operations-api.md).
ID_NOT_AVAILABLE = "id not available: choose another id"


@contextmanager
def _taken_id_conflict() -> Iterator[None]:
    """A concurrent create of the same id (primary key violation) answers like any taken id."""
    try:
        yield
    except IntegrityError:
        raise ConflictError(ID_NOT_AVAILABLE) from None


_WRITABLE_INSTANCE = (
    "display_name",
    "evolution_base_url",
    "evolution_instance_uuid",
    "routing",
    "active",
)
_CONFIG = ("timezone", "business_hours", "sla_policy")  # validated by core.instance_config
_NOT_NULL = ("active",)


def _instance_values(fields: dict[str, Any]) -> dict[str, Any]:
    for key in _NOT_NULL:
        if key in fields and fields[key] is None:
            raise InvalidError(f"{key}: may not be null")
    values = {k: v for k, v in fields.items() if k in _WRITABLE_INSTANCE}
    if "evolution_api_key" in fields:
        key = fields["evolution_api_key"]
        values["evolution_api_key_encrypted"] = secrets.encrypt(key) if key else None
    return values


def _config_values(current: dict[str, Any], fields: dict[str, Any]) -> dict[str, Any]:
    try:
        return instance_config.patched(current, {k: fields[k] for k in _CONFIG if k in fields})
    except instance_config.ConfigError as exc:
        raise InvalidError(str(exc)) from None


def create_instance(engine: Engine, scope: TenantScope, instance_id: str, fields: dict[str, Any]) -> tuple[dict, str]:
    """Register an instance for the caller's account; returns it and its webhook token (shown once).

    Unset configuration takes the settings' defaults (the time zone is stored: ``BEAZAP_DEFAULT_TIMEZONE``)."""
    token = secrets.new_token("whk")
    values = {k: v for k, v in _instance_values(fields).items() if v is not None}
    values.update(_config_values({}, {k: v for k, v in fields.items() if v is not None}))
    ensure_account(engine, scope.account_id)
    with _taken_id_conflict(), engine.begin() as conn:
        if conn.execute(select(instances.c.id).where(instances.c.id == instance_id)).first() is not None:
            raise ConflictError(ID_NOT_AVAILABLE)
        conn.execute(
            insert(instances).values(
                id=instance_id,
                account_id=scope.account_id,
                webhook_token_hash=secrets.hash_token(token),
                **{"display_name": instance_id, **values},
            )
        )
    return get_instance(engine, _with_instance(scope, instance_id), instance_id), token


def _with_instance(scope: TenantScope, instance_id: str) -> TenantScope:
    return TenantScope(scope.account_id, scope.token_id, scope.scope, scope.instance_ids | {instance_id})


def update_instance(engine: Engine, scope: TenantScope, instance_id: str, fields: dict[str, Any]) -> dict:
    """``PATCH``: fields not sent keep their value; ``business_hours``/``sla_policy`` merge key by key."""
    check_instance(scope, instance_id)
    values = _instance_values(fields)
    if any(k in fields for k in _CONFIG):
        values.update(_config_values(get_instance(engine, scope, instance_id), fields))
    return _write_instance(engine, scope, instance_id, values)


def replace_instance(engine: Engine, scope: TenantScope, instance_id: str, fields: dict[str, Any]) -> dict:
    """``PUT``: every configurable field takes the value sent or its default (the Evolution API key,
    write-only, is kept unless sent)."""
    check_instance(scope, instance_id)
    full = {k: None for k in (*_WRITABLE_INSTANCE, "business_hours", "sla_policy")}
    full.update({"display_name": instance_id, "active": True})
    full.update(fields)
    values = _instance_values(full)
    values.update(_config_values({}, {k: v for k, v in full.items() if k in _CONFIG and v is not None}))
    return _write_instance(engine, scope, instance_id, values)


def _write_instance(engine: Engine, scope: TenantScope, instance_id: str, values: dict[str, Any]) -> dict:
    if values:
        values["updated_at"] = datetime.now(UTC)
        with engine.begin() as conn:
            conn.execute(
                update(instances)
                .where(instances.c.id == instance_id, instances.c.account_id == scope.account_id)
                .values(**values)
            )
    return get_instance(engine, scope, instance_id)


def deactivate_instance(engine: Engine, scope: TenantScope, instance_id: str) -> None:
    """Soft delete: the instance stops receiving webhooks; its history stays for reports."""
    update_instance(engine, scope, instance_id, {"active": False})


def rotate_webhook_token(engine: Engine, scope: TenantScope, instance_id: str) -> str:
    check_instance(scope, instance_id)
    token = secrets.new_token("whk")
    with engine.begin() as conn:
        conn.execute(
            update(instances)
            .where(instances.c.id == instance_id)
            .values(webhook_token_hash=secrets.hash_token(token), updated_at=datetime.now(UTC))
        )
    return token


def webhook_token_matches(engine: Engine, scope: TenantScope, instance_id: str, token: str) -> bool:
    check_instance(scope, instance_id)
    with engine.connect() as conn:
        stored = conn.execute(select(instances.c.webhook_token_hash).where(instances.c.id == instance_id)).scalar()
    return bool(stored) and secrets.token_matches(token, stored)


@dataclass(frozen=True)
class EvolutionCredentials:
    base_url: str
    api_key: str

    def __repr__(self) -> str:  # never print the key
        return f"EvolutionCredentials(base_url={self.base_url!r}, api_key='***')"


def evolution_credentials(engine: Engine, scope: TenantScope, instance_id: str) -> EvolutionCredentials:
    """Base URL and decrypted API key of an instance (InvalidError when not configured)."""
    check_instance(scope, instance_id)
    with engine.connect() as conn:
        row = conn.execute(
            select(instances.c.evolution_base_url, instances.c.evolution_api_key_encrypted).where(
                instances.c.id == instance_id
            )
        ).first()
    if row is None or not row.evolution_base_url or not row.evolution_api_key_encrypted:
        raise InvalidError("the instance has no Evolution base URL and API key configured")
    return EvolutionCredentials(row.evolution_base_url.rstrip("/"), secrets.decrypt(row.evolution_api_key_encrypted))


# ----------------------------------------------------------------------------------- teams
def list_teams(engine: Engine, scope: TenantScope, instance_id: str | None = None) -> list[dict[str, Any]]:
    ids = scoped_instances(scope, [instance_id] if instance_id else None)
    with engine.connect() as conn:
        rows = conn.execute(select(teams).where(teams.c.instance_id.in_(ids)).order_by(teams.c.id))
        return [utc_row(r) for r in rows]


def get_team(engine: Engine, scope: TenantScope, team_id: str) -> dict[str, Any]:
    with engine.connect() as conn:
        row = conn.execute(
            select(teams).where(teams.c.id == team_id, teams.c.instance_id.in_(sorted(scope.instance_ids)))
        ).first()
    if row is None:
        raise NotFoundError(f"team not found: {team_id}")
    return utc_row(row)


def create_team(engine: Engine, scope: TenantScope, instance_id: str, name: str, team_id: str | None = None) -> dict:
    check_instance(scope, instance_id)
    team_id = team_id or "tm_" + uuid.uuid4().hex[:12]
    with _taken_id_conflict(), engine.begin() as conn:
        if conn.execute(select(teams.c.id).where(teams.c.id == team_id)).first() is not None:
            raise ConflictError(ID_NOT_AVAILABLE)
        conn.execute(insert(teams).values(id=team_id, instance_id=instance_id, name=name))
    return get_team(engine, scope, team_id)


def update_team(engine: Engine, scope: TenantScope, team_id: str, fields: dict[str, Any]) -> dict:
    get_team(engine, scope, team_id)
    if fields.get("name"):
        with engine.begin() as conn:
            conn.execute(
                update(teams).where(teams.c.id == team_id).values(name=fields["name"], updated_at=datetime.now(UTC))
            )
    return get_team(engine, scope, team_id)


def delete_team(engine: Engine, scope: TenantScope, team_id: str) -> None:
    get_team(engine, scope, team_id)
    with engine.begin() as conn:
        conn.execute(update(attendants).where(attendants.c.team_id == team_id).values(team_id=None))
        conn.execute(delete(teams).where(teams.c.id == team_id))


# ----------------------------------------------------------------------------------- attendants
_WRITABLE_ATTENDANT = ("team_id", "name", "email", "capacity", "available", "active")


def list_attendants(
    engine: Engine, scope: TenantScope, instance_id: str | None = None, team_id: str | None = None
) -> list[dict[str, Any]]:
    ids = scoped_instances(scope, [instance_id] if instance_id else None)
    q = select(attendants).where(attendants.c.instance_id.in_(ids))
    if team_id:
        q = q.where(attendants.c.team_id == team_id)
    with engine.connect() as conn:
        rows = [utc_row(r) for r in conn.execute(q.order_by(attendants.c.id))]
        load = open_load(conn, [r["id"] for r in rows]) if rows else {}
    for r in rows:
        r["open_conversations"] = load.get(r["id"], 0)
    return rows


def open_load(conn: Any, attendant_ids: list[str] | None) -> dict[str, int]:
    """Open conversations per attendant (for capacity)."""
    q = (
        select(conversations.c.assignee_id, func.count())
        .where(conversations.c.status == "open", conversations.c.assignee_id.is_not(None))
        .group_by(conversations.c.assignee_id)
    )
    if attendant_ids is not None:
        q = q.where(conversations.c.assignee_id.in_(attendant_ids))
    return {a: int(n) for a, n in conn.execute(q)}


def get_attendant(engine: Engine, scope: TenantScope, attendant_id: str) -> dict[str, Any]:
    with engine.connect() as conn:
        row = conn.execute(
            select(attendants).where(
                attendants.c.id == attendant_id, attendants.c.instance_id.in_(sorted(scope.instance_ids))
            )
        ).first()
        if row is None:
            raise NotFoundError(f"attendant not found: {attendant_id}")
        out = utc_row(row)
        out["open_conversations"] = open_load(conn, [attendant_id]).get(attendant_id, 0)
    return out


def _check_team_for(engine: Engine, scope: TenantScope, instance_id: str, team_id: str | None) -> None:
    if team_id is None:
        return
    team = get_team(engine, scope, team_id)
    if team["instance_id"] != instance_id:
        raise InvalidError("the team belongs to another instance")


def create_attendant(engine: Engine, scope: TenantScope, instance_id: str, fields: dict[str, Any]) -> dict:
    check_instance(scope, instance_id)
    _check_team_for(engine, scope, instance_id, fields.get("team_id"))
    attendant_id = fields.get("id") or "at_" + uuid.uuid4().hex[:12]
    values = {k: v for k, v in fields.items() if k in _WRITABLE_ATTENDANT and v is not None}
    with _taken_id_conflict(), engine.begin() as conn:
        if conn.execute(select(attendants.c.id).where(attendants.c.id == attendant_id)).first() is not None:
            raise ConflictError(ID_NOT_AVAILABLE)
        conn.execute(insert(attendants).values(id=attendant_id, instance_id=instance_id, **values))
    return get_attendant(engine, scope, attendant_id)


def update_attendant(engine: Engine, scope: TenantScope, attendant_id: str, fields: dict[str, Any]) -> dict:
    current = get_attendant(engine, scope, attendant_id)
    values = {k: v for k, v in fields.items() if k in _WRITABLE_ATTENDANT}
    if "team_id" in values:
        _check_team_for(engine, scope, current["instance_id"], values["team_id"])
    if values:
        values["updated_at"] = datetime.now(UTC)
        with engine.begin() as conn:
            conn.execute(update(attendants).where(attendants.c.id == attendant_id).values(**values))
    return get_attendant(engine, scope, attendant_id)


def delete_attendant(engine: Engine, scope: TenantScope, attendant_id: str) -> None:
    """Soft delete (``active = false``): the attendant keeps their history and attribution."""
    update_attendant(engine, scope, attendant_id, {"active": False, "available": False})


# ----------------------------------------------------------------------------------- conversations
def encode_cursor(*parts: Any) -> str:
    raw = json.dumps([p.isoformat() if isinstance(p, datetime) else p for p in parts]).encode()
    return base64.urlsafe_b64encode(raw).decode().rstrip("=")


def decode_cursor(cursor: str) -> list[Any]:
    try:
        raw = base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4))
        parts = json.loads(raw)
        if not isinstance(parts, list) or len(parts) != 2:
            raise ValueError
        at, last_id = datetime.fromisoformat(parts[0]), str(parts[1])
    except (ValueError, TypeError) as exc:
        raise InvalidError("invalid cursor") from exc
    if "\x00" in last_id:  # a forged cursor: PostgreSQL text cannot hold NUL
        raise InvalidError("invalid cursor: NUL characters (\\u0000) are not allowed")
    return [at, last_id]


@dataclass
class ConversationFilter:
    instance_ids: list[str] | None = None
    status: str | None = None
    assignee_id: str | None = None
    team_id: str | None = None
    unassigned: bool | None = None
    sla: str | None = None  # at_risk | breached (first-response clock)
    opened_from: datetime | None = None
    opened_to: datetime | None = None


def get_conversation(engine: Engine, scope: TenantScope, conversation_id: str) -> dict[str, Any]:
    with engine.connect() as conn:
        row = conn.execute(
            select(conversations).where(
                conversations.c.id == conversation_id,
                conversations.c.instance_id.in_(sorted(scope.instance_ids)),
            )
        ).first()
    if row is None:
        raise NotFoundError(f"conversation not found: {conversation_id}")
    return utc_row(row)


def list_conversations(
    engine: Engine,
    scope: TenantScope,
    flt: ConversationFilter,
    *,
    limit: int = 50,
    cursor: str | None = None,
    frt_cutoffs: dict[str, tuple[datetime, datetime]] | None = None,
) -> tuple[list[dict[str, Any]], str | None]:
    """Newest first (``opened_at`` desc, id desc), keyset-paginated.

    ``frt_cutoffs`` maps instance → (at-risk cutoff, breach cutoff) of ``opened_at`` for the SLA filter.
    """
    ids = scoped_instances(scope, flt.instance_ids)
    c = conversations
    q = select(c).where(c.c.instance_id.in_(ids))
    if flt.status:
        q = q.where(c.c.status == flt.status)
    if flt.assignee_id:
        q = q.where(c.c.assignee_id == flt.assignee_id)
    if flt.team_id:
        q = q.where(c.c.team_id == flt.team_id)
    if flt.unassigned is True:
        q = q.where(c.c.assignee_id.is_(None))
    elif flt.unassigned is False:
        q = q.where(c.c.assignee_id.is_not(None))
    if flt.opened_from:
        q = q.where(c.c.opened_at >= flt.opened_from)
    if flt.opened_to:
        q = q.where(c.c.opened_at < flt.opened_to)
    if flt.sla:
        cut = frt_cutoffs or {}
        per_instance = []
        for i in ids:
            if i not in cut:  # first response not measured for this instance
                continue
            at_risk, breach = cut[i]
            if flt.sla == "breached":
                per_instance.append(and_(c.c.instance_id == i, c.c.opened_at < breach))
            else:
                per_instance.append(and_(c.c.instance_id == i, c.c.opened_at < at_risk, c.c.opened_at >= breach))
        q = q.where(
            c.c.status == "open",
            c.c.first_response_at.is_(None),
            c.c.origin == "inbound",
            or_(false(), *per_instance),
        )
    if cursor:
        at, last_id = decode_cursor(cursor)
        q = q.where(or_(c.c.opened_at < at, and_(c.c.opened_at == at, c.c.id < last_id)))
    q = q.order_by(c.c.opened_at.desc(), c.c.id.desc()).limit(limit + 1)
    with engine.connect() as conn:
        rows = [utc_row(r) for r in conn.execute(q)]
    next_cursor = None
    if len(rows) > limit:
        rows = rows[:limit]
        next_cursor = encode_cursor(rows[-1]["opened_at"], rows[-1]["id"])
    return rows, next_cursor


def list_messages(
    engine: Engine,
    scope: TenantScope,
    conversation_id: str,
    *,
    limit: int = 50,
    cursor: str | None = None,
    conversation: dict[str, Any] | None = None,
) -> tuple[list[dict[str, Any]], str | None]:
    """A conversation's messages, oldest first, keyset-paginated on (timestamp, message_id).

    ``conversation`` (already loaded with the same scope) saves a round trip."""
    conv = conversation if conversation is not None else get_conversation(engine, scope, conversation_id)
    if conv["id"] != conversation_id or conv["instance_id"] not in scope.instance_ids:
        raise NotFoundError(f"conversation not found: {conversation_id}")
    m = messages
    q = select(m).where(m.c.conversation_id == conversation_id, m.c.instance_id == conv["instance_id"])
    if cursor:
        at, last_id = decode_cursor(cursor)
        q = q.where(or_(m.c.timestamp > at, and_(m.c.timestamp == at, m.c.message_id > last_id)))
    q = q.order_by(m.c.timestamp, m.c.message_id).limit(limit + 1)
    with engine.connect() as conn:
        rows = [utc_row(r) for r in conn.execute(q)]
    next_cursor = None
    if len(rows) > limit:
        rows = rows[:limit]
        next_cursor = encode_cursor(rows[-1]["timestamp"], rows[-1]["message_id"])
    return rows, next_cursor


def no_first_response_queue(
    engine: Engine,
    scope: TenantScope,
    instance_ids: list[str] | None = None,
    *,
    opened_before: dict[str, datetime] | None = None,
    opened_since: dict[str, datetime] | None = None,
    limit: int = 100,
) -> list[dict[str, Any]]:
    """Open conversations still waiting for a first response, oldest first: the seed's partial-index
    query (``status = 'open' AND first_response_at IS NULL``), optionally only those opened before
    (and at or after) a per-instance cutoff (at risk / breached, see ``live.sla``)."""
    ids = scoped_instances(scope, instance_ids)
    c = conversations
    q = select(c).where(c.c.instance_id.in_(ids), c.c.status == "open", c.c.first_response_at.is_(None))
    q = q.where(c.c.origin == "inbound")
    if opened_before:
        since = opened_since or {}
        q = q.where(
            or_(
                *[
                    and_(c.c.instance_id == i, c.c.opened_at < opened_before[i], c.c.opened_at >= since[i])
                    if i in since
                    else and_(c.c.instance_id == i, c.c.opened_at < opened_before[i])
                    for i in ids
                ]
            )
        )
    q = q.order_by(c.c.opened_at).limit(limit)
    with engine.connect() as conn:
        return [utc_row(r) for r in conn.execute(q)]
