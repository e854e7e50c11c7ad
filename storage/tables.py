"""Operational store schema (SQLAlchemy 2 Core). Alembic migrations in ``storage/migrations``
must always match these definitions (a test runs autogenerate and expects no diff).

Tenancy (ARCHITECTURE.md principle 5): an account owns instances (and, later, attendants, teams,
API tokens). Every tenant query filters by the caller's instance ids.
"""

from __future__ import annotations

from sqlalchemy import (
    JSON,
    Boolean,
    Column,
    DateTime,
    ForeignKey,
    Index,
    MetaData,
    String,
    Table,
    Text,
    func,
    true,
)

NAMING = {
    "ix": "ix_%(table_name)s_%(column_0_N_name)s",
    "uq": "uq_%(table_name)s_%(column_0_N_name)s",
    "ck": "ck_%(table_name)s_%(constraint_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}
metadata = MetaData(naming_convention=NAMING)

TS = DateTime(timezone=True)

accounts = Table(
    "accounts",
    metadata,
    Column("id", String(64), primary_key=True),
    Column("name", String(200), nullable=False),
    Column("created_at", TS, nullable=False, server_default=func.now()),
)

api_tokens = Table(
    "api_tokens",
    metadata,
    Column("id", String(64), primary_key=True),
    Column("account_id", String(64), ForeignKey("accounts.id", ondelete="CASCADE"), nullable=False),
    Column("name", String(200), nullable=False),
    Column("token_hash", String(128), nullable=False, unique=True),  # sha256 hex; the token is never stored
    Column("scope", String(20), nullable=False),  # admin | agent | read-only
    Column("created_at", TS, nullable=False, server_default=func.now()),
    Column("revoked_at", TS),
    Index(None, "account_id"),
)

instances = Table(
    "instances",
    metadata,
    # The Evolution instance *name*: it is what every webhook envelope carries in `instance`.
    Column("id", String(100), primary_key=True),
    Column("account_id", String(64), ForeignKey("accounts.id", ondelete="RESTRICT"), nullable=False),
    Column("display_name", String(200)),
    Column("webhook_token_hash", String(128), nullable=False),  # sha256 hex of the webhook token
    Column("jwt_secret_encrypted", Text),  # Evolution `jwt_key` mode: HS256 secret, encrypted at rest
    Column("evolution_base_url", String(500)),
    Column("evolution_api_key_encrypted", Text),  # never logged, never returned
    Column("evolution_instance_uuid", String(64)),
    Column("timezone", String(64), nullable=False, server_default="America/Sao_Paulo"),
    Column("business_hours", JSON),  # weekly schedule + holidays, effective-dated (gold issue)
    Column("sla_policy", JSON),
    Column("active", Boolean, nullable=False, server_default=true()),
    Column("created_at", TS, nullable=False, server_default=func.now()),
    Column("updated_at", TS, nullable=False, server_default=func.now()),
    Index(None, "account_id"),
)

# LGPD erasure audit (ops/governance/erasure.py): proves an erasure happened without keeping the
# personal data — the subject is a keyed hash (HMAC with the deployment secret), never the phone.
erasure_audit = Table(
    "erasure_audit",
    metadata,
    Column("id", String(64), primary_key=True),
    Column("subject_hash", String(64), nullable=False),  # keyed hash of the E.164 phone
    Column("lid_hashes", JSON, nullable=False),  # keyed hashes of the LIDs erased with it
    Column("requested_by", String(200), nullable=False),
    Column("requested_at", TS, nullable=False),
    Column("completed_at", TS),
    Column("status", String(20), nullable=False),  # running | completed | failed
    Column("tables", JSON),  # {"layer/table" or "ops:table": rows changed}
    Column("verified_at", TS),
    Column("verification", JSON),  # {"clean": bool, "leftovers": [...]} without personal data
    Index(None, "subject_hash"),
)
