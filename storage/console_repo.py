"""Tenant-scoped repositories of the console: quick replies, the alert webhook, in-app notifications.

Everything is per account (the caller's :class:`~storage.tokens.TenantScope`); another account's id
answers :class:`~storage.ops_repo.NotFoundError`, as everywhere in the operational API. The alert
webhook's signing secret is stored encrypted and never returned.
"""

from __future__ import annotations

import re
import uuid
from datetime import datetime
from typing import Any

from sqlalchemy import Engine, and_, delete, insert, select, update
from sqlalchemy.exc import IntegrityError

from core.utc import utc_row
from storage import secrets
from storage.ops_repo import ConflictError, InvalidError, NotFoundError
from storage.tables import alert_webhooks, notifications, quick_replies, sla_alerts
from storage.tokens import TenantScope

SHORTCUT = re.compile(r"^[a-z0-9][a-z0-9_-]{0,49}$")


def normalize_shortcut(shortcut: str) -> str:
    """``/Saudacao`` → ``saudacao``; letters, digits, ``-`` and ``_`` only (422 otherwise)."""
    value = shortcut.strip().removeprefix("/").lower()
    if not SHORTCUT.match(value):
        raise InvalidError("shortcut must be 1-50 characters: a-z, 0-9, '-' or '_' (e.g. /saudacao)")
    return value


# ----------------------------------------------------------------------------- quick replies
def list_quick_replies(engine: Engine, scope: TenantScope, prefix: str | None = None) -> list[dict[str, Any]]:
    q = select(quick_replies).where(quick_replies.c.account_id == scope.account_id)
    if prefix:
        stem = prefix.strip().removeprefix("/").lower()
        q = q.where(quick_replies.c.shortcut.startswith(stem, autoescape=True))
    with engine.connect() as conn:
        return [utc_row(r) for r in conn.execute(q.order_by(quick_replies.c.shortcut))]


def get_quick_reply(engine: Engine, scope: TenantScope, *, reply_id: str | None = None, shortcut: str | None = None):
    q = select(quick_replies).where(quick_replies.c.account_id == scope.account_id)
    q = q.where(quick_replies.c.id == reply_id) if reply_id else q.where(quick_replies.c.shortcut == shortcut)
    with engine.connect() as conn:
        row = conn.execute(q).first()
    if row is None:
        raise NotFoundError("quick reply not found")
    return utc_row(row)


def create_quick_reply(engine: Engine, scope: TenantScope, fields: dict[str, Any]) -> dict[str, Any]:
    reply_id = "qr_" + uuid.uuid4().hex[:12]
    shortcut = normalize_shortcut(fields["shortcut"])
    try:
        with engine.begin() as conn:
            conn.execute(
                insert(quick_replies).values(
                    id=reply_id,
                    account_id=scope.account_id,
                    shortcut=shortcut,
                    title=fields["title"],
                    body=fields["body"],
                )
            )
    except IntegrityError:
        raise ConflictError(f"shortcut already exists: /{shortcut}") from None
    return get_quick_reply(engine, scope, reply_id=reply_id)


def update_quick_reply(
    engine: Engine, scope: TenantScope, reply_id: str, fields: dict[str, Any], now: datetime
) -> dict[str, Any]:
    get_quick_reply(engine, scope, reply_id=reply_id)
    values = {k: v for k, v in fields.items() if v is not None}
    if "shortcut" in values:
        values["shortcut"] = normalize_shortcut(values["shortcut"])
    try:
        with engine.begin() as conn:
            conn.execute(
                update(quick_replies)
                .where(quick_replies.c.id == reply_id, quick_replies.c.account_id == scope.account_id)
                .values(**values, updated_at=now)
            )
    except IntegrityError:
        raise ConflictError(f"shortcut already exists: /{values.get('shortcut')}") from None
    return get_quick_reply(engine, scope, reply_id=reply_id)


def delete_quick_reply(engine: Engine, scope: TenantScope, reply_id: str) -> None:
    with engine.begin() as conn:
        done = conn.execute(
            delete(quick_replies).where(quick_replies.c.id == reply_id, quick_replies.c.account_id == scope.account_id)
        ).rowcount
    if not done:
        raise NotFoundError("quick reply not found")


# ----------------------------------------------------------------------------- alert webhook
def set_alert_webhook(engine: Engine, scope: TenantScope, url: str, secret: str, now: datetime) -> dict[str, Any]:
    if not url.startswith(("http://", "https://")):
        raise InvalidError("url must be http:// or https://")
    if len(secret) < 16:
        raise InvalidError("secret must have at least 16 characters")
    values = {"url": url, "secret_encrypted": secrets.encrypt(secret), "updated_at": now}
    with engine.begin() as conn:
        done = conn.execute(
            update(alert_webhooks).where(alert_webhooks.c.account_id == scope.account_id).values(**values)
        ).rowcount
        if not done:
            conn.execute(insert(alert_webhooks).values(account_id=scope.account_id, **values))
    return get_alert_webhook(engine, scope)


def get_alert_webhook(engine: Engine, scope: TenantScope) -> dict[str, Any]:
    with engine.connect() as conn:
        row = conn.execute(
            select(alert_webhooks.c.url, alert_webhooks.c.updated_at).where(
                alert_webhooks.c.account_id == scope.account_id
            )
        ).first()
    if row is None:
        raise NotFoundError("no alert webhook configured")
    return {**utc_row(row), "secret_set": True}


def delete_alert_webhook(engine: Engine, scope: TenantScope) -> None:
    with engine.begin() as conn:
        conn.execute(delete(alert_webhooks).where(alert_webhooks.c.account_id == scope.account_id))


def alert_webhook_target(engine: Engine, account_id: str) -> tuple[str, str] | None:
    """(url, secret) of an account's alert webhook, decrypted for the sender only."""
    with engine.connect() as conn:
        row = conn.execute(select(alert_webhooks).where(alert_webhooks.c.account_id == account_id)).first()
    return (row.url, secrets.decrypt(row.secret_encrypted)) if row else None


# ----------------------------------------------------------------------------- notifications
def list_notifications(
    engine: Engine, scope: TenantScope, recipient: str | None = None, *, unacked: bool = True, limit: int = 100
) -> list[dict[str, Any]]:
    n, a = notifications.c, sla_alerts.c
    q = (
        select(
            n.id,
            n.recipient,
            n.created_at,
            n.acked_at,
            a.conversation_id,
            a.instance_id,
            a.clock,
            a.state,
            a.due_at,
            a.assignee_id,
        )
        .join_from(notifications, sla_alerts, a.id == n.alert_id)
        .where(n.account_id == scope.account_id, a.instance_id.in_(sorted(scope.instance_ids)))
    )
    if recipient:
        q = q.where(n.recipient == recipient)
    if unacked:
        q = q.where(n.acked_at.is_(None))
    with engine.connect() as conn:
        return [utc_row(r) for r in conn.execute(q.order_by(n.id.desc()).limit(limit))]


def ack_notification(engine: Engine, scope: TenantScope, notification_id: int, now: datetime) -> None:
    n = notifications.c
    with engine.begin() as conn:
        found = conn.execute(select(n.id).where(n.id == notification_id, n.account_id == scope.account_id)).first()
        if found is None:
            raise NotFoundError("notification not found")
        conn.execute(
            update(notifications).where(and_(n.id == notification_id, n.acked_at.is_(None))).values(acked_at=now)
        )
