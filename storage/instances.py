"""Accounts and instances in the operational store: registration, credentials and configuration.

The receiver authenticates webhooks with :func:`load_credentials` (cached in memory by the
receiver); ``beazap instance add`` calls :func:`add_instance`; every reader of an instance's time
zone, business hours or SLA policy calls :func:`load_configs` (``core.instance_config``).
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

from sqlalchemy import Engine, insert, select

from core import instance_config
from core.instance_config import InstanceConfig
from storage import secrets
from storage.tables import accounts, instances


@dataclass(frozen=True)
class InstanceCredential:
    """What the receiver needs to authenticate one instance's webhooks."""

    instance_id: str
    account_id: str
    webhook_token_hash: str
    jwt_secret: str | None  # decrypted HS256 secret for Evolution's jwt_key mode
    evolution_instance_uuid: str | None = None  # Evolution's own id of the instance (`data.instanceId`)


def ensure_account(engine: Engine, account_id: str, name: str | None = None) -> None:
    with engine.begin() as conn:
        exists = conn.execute(select(accounts.c.id).where(accounts.c.id == account_id)).first()
        if not exists:
            conn.execute(insert(accounts).values(id=account_id, name=name or account_id))


def add_instance(
    engine: Engine,
    instance_id: str,
    account_id: str,
    *,
    token: str | None = None,
    jwt_secret: str | None = None,
    timezone: str | None = None,
    display_name: str | None = None,
) -> str:
    """Register an instance (creating its account if needed) and return its webhook token.

    ``timezone`` defaults to ``BEAZAP_DEFAULT_TIMEZONE``; an unknown zone raises ``ConfigError``."""
    timezone = instance_config.validate(timezone).timezone
    token = token or secrets.new_token("whk")
    ensure_account(engine, account_id)
    with engine.begin() as conn:
        conn.execute(
            insert(instances).values(
                id=instance_id,
                account_id=account_id,
                display_name=display_name or instance_id,
                webhook_token_hash=secrets.hash_token(token),
                jwt_secret_encrypted=secrets.encrypt(jwt_secret) if jwt_secret else None,
                timezone=timezone,
            )
        )
    return token


def load_credentials(engine: Engine) -> dict[str, InstanceCredential]:
    """All active instances' webhook credentials, keyed by instance id (= Evolution instance name)."""
    with engine.connect() as conn:
        rows = conn.execute(
            select(
                instances.c.id,
                instances.c.account_id,
                instances.c.webhook_token_hash,
                instances.c.jwt_secret_encrypted,
                instances.c.evolution_instance_uuid,
            ).where(instances.c.active.is_(True))
        ).all()
    return {
        row.id: InstanceCredential(
            instance_id=row.id,
            account_id=row.account_id,
            webhook_token_hash=row.webhook_token_hash,
            jwt_secret=secrets.decrypt(row.jwt_secret_encrypted) if row.jwt_secret_encrypted else None,
            evolution_instance_uuid=row.evolution_instance_uuid,
        )
        for row in rows
    }


def load_configs(engine: Engine, instance_ids: Iterable[str] | None = None) -> dict[str, InstanceConfig]:
    """Configuration of the stored instances (all, or those in ``instance_ids``), keyed by id.

    Never raises on a bad stored value: :func:`core.instance_config.load` logs it and uses the default."""
    q = select(instances.c.id, instances.c.timezone, instances.c.business_hours, instances.c.sla_policy)
    if instance_ids is not None:
        q = q.where(instances.c.id.in_(sorted(set(instance_ids))))
    with engine.connect() as conn:
        rows = conn.execute(q).all()
    return {r.id: instance_config.load(r.id, r.timezone, r.business_hours, r.sla_policy) for r in rows}
