"""Operational store schema (SQLAlchemy 2 Core). Alembic migrations in ``storage/migrations``
must always match these definitions (a test runs autogenerate and expects no diff).

Tenancy (ARCHITECTURE.md principle 5): an account owns instances (and, later, attendants, teams,
API tokens). Every tenant query filters by the caller's instance ids.
"""

from __future__ import annotations

from sqlalchemy import (
    JSON,
    BigInteger,
    Boolean,
    Column,
    Date,
    DateTime,
    ForeignKey,
    Index,
    Integer,
    MetaData,
    String,
    Table,
    Text,
    UniqueConstraint,
    false,
    func,
    text,
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
    # IANA zone, business hours and SLA policy: one model, core/instance_config.py (validated on write;
    # the zone is filled from BEAZAP_DEFAULT_TIMEZONE at registration).
    Column("timezone", String(64), nullable=False),
    Column("business_hours", JSON),  # weekly schedules (effective-dated) + holidays
    Column("sla_policy", JSON),  # targets per clock with their basis
    Column("active", Boolean, nullable=False, server_default=true()),
    Column("created_at", TS, nullable=False, server_default=func.now()),
    Column("updated_at", TS, nullable=False, server_default=func.now()),
    Index(None, "account_id"),
)

# LGPD erasure audit (governance/erasure.py): proves an erasure happened without keeping the
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

# ---------------------------------------------------------------------------------------------
# Operational core (issue 6): teams, attendants, live conversations and messages, the action
# log, the projector's cursors and the send idempotency ledger. Migration 0002_ops_core.
# ---------------------------------------------------------------------------------------------

teams = Table(
    "teams",
    metadata,
    Column("id", String(64), primary_key=True),
    Column("instance_id", String(100), ForeignKey("instances.id", ondelete="CASCADE"), nullable=False),
    Column("name", String(200), nullable=False),
    Column("created_at", TS, nullable=False, server_default=func.now()),
    Column("updated_at", TS, nullable=False, server_default=func.now()),
    Index(None, "instance_id"),
)

attendants = Table(
    "attendants",
    metadata,
    Column("id", String(64), primary_key=True),
    Column("instance_id", String(100), ForeignKey("instances.id", ondelete="CASCADE"), nullable=False),
    Column("team_id", String(64), ForeignKey("teams.id", ondelete="SET NULL")),
    Column("name", String(200), nullable=False),
    Column("email", String(320)),
    Column("capacity", Integer, nullable=False, server_default="5"),  # open conversations at most
    Column("available", Boolean, nullable=False, server_default=true()),
    Column("active", Boolean, nullable=False, server_default=true()),
    Column("last_assigned_at", TS),  # round-robin order
    Column("created_at", TS, nullable=False, server_default=func.now()),
    Column("updated_at", TS, nullable=False, server_default=func.now()),
    Index(None, "instance_id"),
    Index(None, "team_id"),
)

conversations = Table(
    "conversations",
    metadata,
    Column("id", String(64), primary_key=True),  # core.identity.conversation_id (== silver)
    Column("instance_id", String(100), ForeignKey("instances.id", ondelete="CASCADE"), nullable=False),
    Column("contact_key", String(100), nullable=False),
    Column("chat_jid", String(100)),
    Column("origin", String(10), nullable=False),  # inbound | outbound
    Column("opening_message_id", String(100), nullable=False),
    Column("opened_at", TS, nullable=False),
    Column("first_response_at", TS),
    Column("first_response_message_id", String(100)),
    Column("first_responder_id", String(64)),
    Column("last_message_at", TS, nullable=False),
    Column("last_inbound_at", TS),
    Column("awaiting_since", TS),  # first customer message not yet answered (next-reply clock)
    Column("status", String(10), nullable=False),  # open | resolved | expired
    Column("resolved_at", TS),
    Column("resolved_by", String(64)),
    Column("expired_at", TS),
    Column("closed_at", TS),
    Column("first_assigned_at", TS),
    Column("assignee_id", String(64)),
    Column("team_id", String(64)),
    Column("inbound_count", Integer, nullable=False, server_default="0"),
    Column("outbound_count", Integer, nullable=False, server_default="0"),
    Column("previous_conversation_id", String(64)),
    Column("is_reopen", Boolean, nullable=False, server_default=false()),
    Column("reopened", Boolean, nullable=False, server_default=false()),
    Column("version", Integer, nullable=False, server_default="1"),  # optimistic concurrency of actions
    Column("updated_at", TS, nullable=False, server_default=func.now()),
    # The seed's indexes, exactly, plus what the projector and the queue need.
    Index("ix_conversations_instance_id_opened_at", "instance_id", "opened_at"),
    Index("ix_conversations_instance_id_status", "instance_id", "status"),
    Index(
        "ix_conversations_sla_open",
        "instance_id",
        "status",
        postgresql_where=text("status = 'open' AND first_response_at IS NULL"),
        sqlite_where=text("status = 'open' AND first_response_at IS NULL"),
    ),
    Index("ix_conversations_instance_id_contact_key_opened_at", "instance_id", "contact_key", "opened_at"),
    Index("ix_conversations_assignee_id_status", "assignee_id", "status"),
)

# On PostgreSQL this table is range-partitioned by month on ``timestamp`` (migration 0002 writes
# the DDL; ``storage.partitions`` keeps future partitions and drops those past the live window).
# A partitioned table's unique keys must contain the partition column, so the message key is
# (instance_id, message_id, timestamp): WhatsApp's timestamp of a message id never changes.
messages = Table(
    "messages",
    metadata,
    Column("instance_id", String(100), primary_key=True),
    Column("message_id", String(100), primary_key=True),
    Column("timestamp", TS, primary_key=True),  # messageTimestamp (event time, UTC)
    Column("conversation_id", String(64)),
    Column("contact_key", String(100)),
    Column("chat_jid", String(100)),
    Column("direction", String(10), nullable=False),  # inbound | outbound
    Column("kind", String(20), nullable=False),
    Column("text", Text),
    Column("status", String(20)),
    Column("edited", Boolean, nullable=False, server_default=false()),
    Column("revoked", Boolean, nullable=False, server_default=false()),
    Column("automated", Boolean, nullable=False, server_default=false()),
    Column("sender_attendant_id", String(64)),
    Column("created_at", TS, nullable=False, server_default=func.now()),
    Index("ix_messages_conversation_id_timestamp", "conversation_id", "timestamp"),
    postgresql_partition_by='RANGE ("timestamp")',
)

# The action log: every assign/transfer/unassign/resolve/reopen/route/message_sent with actor and
# time. ``source`` = 'store' for actions taken here (extracted to bronze/ops_events) or 'lake' for
# actions read from bronze/ops_events. ``conversation_id`` is NULL until the action is applied.
actions = Table(
    "actions",
    metadata,
    Column("id", String(64), primary_key=True),  # == bronze/ops_events.action_id
    Column("instance_id", String(100), nullable=False),
    Column("conversation_id", String(64)),
    Column("contact_key", String(100)),
    Column("action", String(20), nullable=False),
    Column("actor_id", String(64)),
    Column("attendant_id", String(64)),
    Column("team_id", String(64)),
    Column("message_id", String(100)),  # message_sent: the message it names
    Column("occurred_at", TS, nullable=False),
    Column("details", JSON),
    Column("source", String(10), nullable=False, server_default="store"),
    Column("extracted_at", TS),  # when it was appended to bronze/ops_events (store actions)
    Column("created_at", TS, nullable=False, server_default=func.now()),
    Index(None, "conversation_id", "occurred_at"),
    Index(None, "instance_id", "contact_key", "occurred_at"),
    Index(None, "instance_id", "message_id"),
    Index(None, "source", "extracted_at"),
)

# Message events (acks, edits, revokes) that arrived before their message: applied on arrival.
pending_message_events = Table(
    "pending_message_events",
    metadata,
    Column("instance_id", String(100), primary_key=True),
    Column("message_id", String(100), primary_key=True),
    Column("status", String(20)),
    Column("text", Text),
    Column("edited", Boolean, nullable=False, server_default=false()),
    Column("revoked", Boolean, nullable=False, server_default=false()),
    Column("received_at", TS, nullable=False, server_default=func.now()),
)

# Where each consumer stands in a bronze table (Delta version + rows already applied of it).
projector_cursors = Table(
    "projector_cursors",
    metadata,
    Column("name", String(100), primary_key=True),
    Column("version", BigInteger, nullable=False),
    Column("row_offset", BigInteger, nullable=False, server_default="0"),
    Column("updated_at", TS, nullable=False, server_default=func.now()),
)

# Named leases (storage.leases): one holder of a role, e.g. the live projector, at a time.
leases = Table(
    "leases",
    metadata,
    Column("name", String(100), primary_key=True),
    Column("holder", String(200), nullable=False),
    Column("expires_at", TS, nullable=False),
    Column("acquired_at", TS, nullable=False),
)

# Idempotency ledger of POST /v1/conversations/{id}/messages: a key is sent at most once.
outbound_requests = Table(
    "outbound_requests",
    metadata,
    Column("instance_id", String(100), primary_key=True),
    Column("idempotency_key", String(200), primary_key=True),
    Column("conversation_id", String(64), nullable=False),
    Column("attendant_id", String(64)),
    Column("request_hash", String(64), nullable=False),
    Column("status", String(10), nullable=False),  # sending | sent | failed
    Column("message_id", String(100)),
    Column("response", JSON),
    Column("error", Text),
    Column("created_at", TS, nullable=False, server_default=func.now()),
    Column("updated_at", TS, nullable=False, server_default=func.now()),
)

# Routing configuration of an instance (issue 6): {"auto_assign": bool, "router": "round_robin",
# "default_team_id": "…"}. Added by 0002_ops_core.
instances.append_column(Column("routing", JSON))

# ---------------------------------------------------------------------------------------------
# LLM routing and analysis (issue 8): the routing job queue, per-tenant daily usage and the
# answer cache (routing rules live in ``instances.routing``, see docs/llm.md).
# Migration 0003_llm (a branch off 0001_initial).
# ---------------------------------------------------------------------------------------------

# Work for the routing worker. Claimed with FOR UPDATE SKIP LOCKED on PostgreSQL, with one atomic
# UPDATE … RETURNING on SQLite; a claim is a lease (``locked_until``) so a crashed worker's jobs return.
llm_jobs = Table(
    "llm_jobs",
    metadata,
    Column("id", String(64), primary_key=True),
    Column("kind", String(20), nullable=False),  # route
    Column("instance_id", String(100), ForeignKey("instances.id", ondelete="CASCADE"), nullable=False),
    Column("conversation_id", String(64), nullable=False),
    Column("contact_key", String(100)),
    Column("status", String(10), nullable=False, server_default="queued"),  # queued | running | done | failed
    Column("attempts", Integer, nullable=False, server_default="0"),
    Column("run_after", TS, nullable=False),
    Column("locked_by", String(100)),
    Column("locked_until", TS),
    Column("last_error", Text),
    Column("result", JSON),
    Column("created_at", TS, nullable=False, server_default=func.now()),
    Column("updated_at", TS, nullable=False, server_default=func.now()),
    UniqueConstraint("kind", "conversation_id"),
    Index(None, "status", "run_after"),
    Index(None, "instance_id"),
)

# Requests and tokens spent per tenant, UTC day and purpose (route | analysis): the budget and /v1/llm/usage.
llm_usage = Table(
    "llm_usage",
    metadata,
    Column("account_id", String(64), ForeignKey("accounts.id", ondelete="CASCADE"), primary_key=True),
    Column("day", Date, primary_key=True),
    Column("purpose", String(20), primary_key=True),
    Column("requests", BigInteger, nullable=False, server_default="0"),
    Column("prompt_tokens", BigInteger, nullable=False, server_default="0"),
    Column("completion_tokens", BigInteger, nullable=False, server_default="0"),
    Column("failures", BigInteger, nullable=False, server_default="0"),
    Column("cache_hits", BigInteger, nullable=False, server_default="0"),
    Column("updated_at", TS, nullable=False, server_default=func.now()),
)

# Validated LLM answers by tenant + redacted content hash + prompt version + model: unchanged
# conversations are never sent twice.
llm_cache = Table(
    "llm_cache",
    metadata,
    Column("account_id", String(64), ForeignKey("accounts.id", ondelete="CASCADE"), primary_key=True),
    Column("purpose", String(20), primary_key=True),
    Column("content_hash", String(64), primary_key=True),
    Column("prompt_version", String(40), primary_key=True),
    Column("model", String(200), primary_key=True),
    Column("result", JSON, nullable=False),
    Column("prompt_tokens", Integer, nullable=False, server_default="0"),
    Column("completion_tokens", Integer, nullable=False, server_default="0"),
    Column("created_at", TS, nullable=False, server_default=func.now()),
)

# LID → phone learned from webhooks (as silver's lidmap): the live store keys a contact by its phone
# once known and moves the LID's conversations to it. Added by 0002_ops_core.
contact_aliases = Table(
    "contact_aliases",
    metadata,
    Column("instance_id", String(100), primary_key=True),
    Column("lid", String(100), primary_key=True),
    Column("phone", String(32), nullable=False),
    Column("learned_at", TS, nullable=False, server_default=func.now()),
    Index(None, "instance_id", "phone"),
)

# Each instance's latest message event time seen (direct and group chats): the "now" that decides
# expiry, as silver's watermark does. Added by 0002_ops_core.
instance_watermarks = Table(
    "instance_watermarks",
    metadata,
    Column("instance_id", String(100), primary_key=True),
    Column("watermark", TS, nullable=False),
)

# ---------------------------------------------------------------------------------------------
# Web dashboard (issue 14): people log in as themselves. Migration 0012_users.
# ---------------------------------------------------------------------------------------------

users = Table(
    "users",
    metadata,
    Column("id", String(64), primary_key=True),
    Column("account_id", String(64), ForeignKey("accounts.id", ondelete="CASCADE"), nullable=False),
    Column("email", String(320), nullable=False, unique=True),  # stored lower-cased
    Column("password_hash", String(200), nullable=False),  # argon2id (storage/users.py)
    Column("role", String(20), nullable=False),  # admin | supervisor | attendant
    Column("attendant_id", String(64), ForeignKey("attendants.id", ondelete="SET NULL")),
    Column("active", Boolean, nullable=False, server_default=true()),
    Column("created_at", TS, nullable=False, server_default=func.now()),
    Index(None, "account_id"),
)

user_sessions = Table(
    "user_sessions",
    metadata,
    Column("id_hash", String(128), primary_key=True),  # sha256 hex of the cookie value; the value is never stored
    Column("user_id", String(64), ForeignKey("users.id", ondelete="CASCADE"), nullable=False),
    Column("csrf_token", String(64), nullable=False),
    Column("created_at", TS, nullable=False, server_default=func.now()),
    Column("expires_at", TS, nullable=False),
    Index(None, "user_id"),
)


# ---------------------------------------------------------------------------------------------
# Console (issue 15): the live queue's change feed, quick replies, attendant presence and SLA
# alerts. Migration 0013_console (it also installs the triggers that fill ``live_changes``).
# ---------------------------------------------------------------------------------------------

SEQ = BigInteger().with_variant(Integer, "sqlite")  # SQLite autoincrements INTEGER PRIMARY KEY only

# One row per insert/update of a conversation, written by a database trigger: its id is the live
# stream's event id (monotonic), so a reconnecting client catches up from ``Last-Event-ID``.
live_changes = Table(
    "live_changes",
    metadata,
    Column("id", SEQ, primary_key=True, autoincrement=True),
    Column("instance_id", String(100), nullable=False),
    Column("conversation_id", String(64), nullable=False),
    Column("changed_at", TS, nullable=False, server_default=func.now()),
)

quick_replies = Table(
    "quick_replies",
    metadata,
    Column("id", String(64), primary_key=True),
    Column("account_id", String(64), ForeignKey("accounts.id", ondelete="CASCADE"), nullable=False),
    Column("shortcut", String(50), nullable=False),
    Column("title", String(200), nullable=False),
    Column("body", Text, nullable=False),
    Column("created_at", TS, nullable=False, server_default=func.now()),
    Column("updated_at", TS, nullable=False, server_default=func.now()),
    UniqueConstraint("account_id", "shortcut"),
)

attendant_presence = Table(
    "attendant_presence",
    metadata,
    Column("attendant_id", String(64), ForeignKey("attendants.id", ondelete="CASCADE"), primary_key=True),
    Column("last_seen_at", TS, nullable=False),
    Column("away", Boolean, nullable=False, server_default=false()),  # the attendant said so
)

# One row per SLA state change of a conversation's clock: the unique key makes an alert fire once.
sla_alerts = Table(
    "sla_alerts",
    metadata,
    Column("id", SEQ, primary_key=True, autoincrement=True),
    Column("account_id", String(64), nullable=False),
    Column("instance_id", String(100), nullable=False),
    Column("conversation_id", String(64), nullable=False),
    Column("clock", String(20), nullable=False),
    Column("state", String(10), nullable=False),  # at_risk | breached
    Column("clock_started_at", TS, nullable=False),
    Column("assignee_id", String(64)),
    Column("due_at", TS),
    Column("created_at", TS, nullable=False),
    UniqueConstraint("conversation_id", "clock", "clock_started_at", "state"),
    Index(None, "account_id", "id"),
)

notifications = Table(
    "notifications",
    metadata,
    Column("id", SEQ, primary_key=True, autoincrement=True),
    Column("account_id", String(64), nullable=False),
    Column("recipient", String(64), nullable=False),  # an attendant id, or "supervisors"
    Column("alert_id", BigInteger, ForeignKey("sla_alerts.id", ondelete="CASCADE"), nullable=False),
    Column("created_at", TS, nullable=False),
    Column("acked_at", TS),
    Index(None, "account_id", "recipient", "acked_at"),
)

alert_webhooks = Table(
    "alert_webhooks",
    metadata,
    Column("account_id", String(64), ForeignKey("accounts.id", ondelete="CASCADE"), primary_key=True),
    Column("url", String(2000), nullable=False),
    Column("secret_encrypted", Text, nullable=False),
    Column("updated_at", TS, nullable=False, server_default=func.now()),
)

# The outbox of alert webhooks: delivered at least once, retried with backoff (idempotency id = alert).
alert_deliveries = Table(
    "alert_deliveries",
    metadata,
    Column("alert_id", BigInteger, ForeignKey("sla_alerts.id", ondelete="CASCADE"), primary_key=True),
    Column("account_id", String(64), nullable=False),
    Column("attempts", Integer, nullable=False, server_default="0"),
    Column("next_attempt_at", TS, nullable=False),
    Column("delivered_at", TS),
    Column("last_error", String(200)),
    Index(None, "delivered_at", "next_attempt_at"),
)
