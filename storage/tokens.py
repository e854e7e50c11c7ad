"""Tenant API tokens: create, revoke and resolve a bearer token to the caller's scope.

A token belongs to one account and has a scope (``admin``, ``agent`` or ``read-only``); the
instances it may see are the account's instances. Only the sha256 of a token is stored.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass

from sqlalchemy import Engine, func, insert, select, update

from storage import secrets
from storage.instances import ensure_account
from storage.tables import api_tokens, instances

SCOPES = ("admin", "agent", "read-only")


@dataclass(frozen=True)
class TenantScope:
    """Who is calling: their account, the instances they may read and what they may do."""

    account_id: str
    token_id: str
    scope: str
    instance_ids: frozenset[str]
    role: str | None = None  # a dashboard user's role (storage/users.py); None for API tokens
    attendant_id: str | None = None  # an attendant user sees only this attendant's figures

    @property
    def can_write(self) -> bool:
        return self.scope in ("admin", "agent")

    @property
    def is_admin(self) -> bool:
        return self.scope == "admin"


def create_token(engine: Engine, account_id: str, scope: str = "admin", name: str = "default") -> str:
    """Create an API token for ``account_id`` and return it (shown once, stored hashed)."""
    if scope not in SCOPES:
        raise ValueError(f"scope must be one of {SCOPES}, got {scope!r}")
    ensure_account(engine, account_id)
    token = secrets.new_token("bzk")
    with engine.begin() as conn:
        conn.execute(
            insert(api_tokens).values(
                id=uuid.uuid4().hex,
                account_id=account_id,
                name=name,
                scope=scope,
                token_hash=secrets.hash_token(token),
            )
        )
    return token


def revoke_token(engine: Engine, token_id: str) -> None:
    with engine.begin() as conn:
        conn.execute(update(api_tokens).where(api_tokens.c.id == token_id).values(revoked_at=func.now()))


def resolve_token(engine: Engine, token: str) -> TenantScope | None:
    """The scope of a bearer token, or None when it is unknown or revoked."""
    with engine.connect() as conn:
        row = conn.execute(
            select(api_tokens.c.id, api_tokens.c.account_id, api_tokens.c.scope).where(
                api_tokens.c.token_hash == secrets.hash_token(token), api_tokens.c.revoked_at.is_(None)
            )
        ).first()
        if row is None:
            return None
        ids = conn.execute(select(instances.c.id).where(instances.c.account_id == row.account_id)).scalars()
        return TenantScope(row.account_id, row.id, row.scope, frozenset(ids))


def list_tokens(engine: Engine, account_id: str) -> list[dict[str, object]]:
    """The account's live tokens (id, name, scope, created_at), never the token itself."""
    with engine.connect() as conn:
        rows = conn.execute(
            select(api_tokens.c.id, api_tokens.c.name, api_tokens.c.scope, api_tokens.c.created_at)
            .where(api_tokens.c.account_id == account_id, api_tokens.c.revoked_at.is_(None))
            .order_by(api_tokens.c.created_at)
        ).all()
    return [dict(row._mapping) for row in rows]


def revoke_account_token(engine: Engine, account_id: str, token_id: str) -> bool:
    """Revoke one of ``account_id``'s tokens; False when it has no such live token."""
    with engine.begin() as conn:
        done = conn.execute(
            update(api_tokens)
            .where(
                api_tokens.c.id == token_id, api_tokens.c.account_id == account_id, api_tokens.c.revoked_at.is_(None)
            )
            .values(revoked_at=func.now())
        ).rowcount
    return bool(done)
