"""console: live change feed (+ triggers), quick replies, attendant presence, SLA alerts

Revision ID: 0013_console
Revises: 0012_users
Create Date: 2026-12-07
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0013_console"
down_revision: str | Sequence[str] | None = "0012_users"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

SEQ = sa.BigInteger().with_variant(sa.Integer(), "sqlite")
TS = sa.DateTime(timezone=True)

# Every insert/update of a conversation appends to live_changes; PostgreSQL also notifies listeners.
PG_FUNCTION = """
CREATE OR REPLACE FUNCTION beazap_live_change() RETURNS trigger AS $$
BEGIN
    INSERT INTO live_changes (instance_id, conversation_id) VALUES (NEW.instance_id, NEW.id);
    PERFORM pg_notify('beazap_live', NEW.instance_id);
    RETURN NULL;
END $$ LANGUAGE plpgsql
"""
PG_TRIGGER = """
CREATE TRIGGER trg_conversations_live AFTER INSERT OR UPDATE ON conversations
FOR EACH ROW EXECUTE FUNCTION beazap_live_change()
"""
SQLITE_TRIGGERS = [
    f"""
CREATE TRIGGER trg_conversations_live_{kind.lower()} AFTER {kind} ON conversations
BEGIN
    INSERT INTO live_changes (instance_id, conversation_id) VALUES (NEW.instance_id, NEW.id);
END
"""
    for kind in ("INSERT", "UPDATE")
]


def upgrade() -> None:
    op.create_table(
        "live_changes",
        sa.Column("id", SEQ, autoincrement=True, nullable=False),
        sa.Column("instance_id", sa.String(length=100), nullable=False),
        sa.Column("conversation_id", sa.String(length=64), nullable=False),
        sa.Column("changed_at", TS, server_default=sa.func.now(), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_live_changes")),
    )
    op.create_table(
        "quick_replies",
        sa.Column("id", sa.String(length=64), nullable=False),
        sa.Column("account_id", sa.String(length=64), nullable=False),
        sa.Column("shortcut", sa.String(length=50), nullable=False),
        sa.Column("title", sa.String(length=200), nullable=False),
        sa.Column("body", sa.Text(), nullable=False),
        sa.Column("created_at", TS, server_default=sa.func.now(), nullable=False),
        sa.Column("updated_at", TS, server_default=sa.func.now(), nullable=False),
        sa.ForeignKeyConstraint(
            ["account_id"], ["accounts.id"], name=op.f("fk_quick_replies_account_id_accounts"), ondelete="CASCADE"
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_quick_replies")),
        sa.UniqueConstraint("account_id", "shortcut", name=op.f("uq_quick_replies_account_id_shortcut")),
    )
    op.create_table(
        "attendant_presence",
        sa.Column("attendant_id", sa.String(length=64), nullable=False),
        sa.Column("last_seen_at", TS, nullable=False),
        sa.Column("away", sa.Boolean(), server_default=sa.false(), nullable=False),
        sa.ForeignKeyConstraint(
            ["attendant_id"],
            ["attendants.id"],
            name=op.f("fk_attendant_presence_attendant_id_attendants"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("attendant_id", name=op.f("pk_attendant_presence")),
    )
    op.create_table(
        "sla_alerts",
        sa.Column("id", SEQ, autoincrement=True, nullable=False),
        sa.Column("account_id", sa.String(length=64), nullable=False),
        sa.Column("instance_id", sa.String(length=100), nullable=False),
        sa.Column("conversation_id", sa.String(length=64), nullable=False),
        sa.Column("clock", sa.String(length=20), nullable=False),
        sa.Column("state", sa.String(length=10), nullable=False),
        sa.Column("clock_started_at", TS, nullable=False),
        sa.Column("assignee_id", sa.String(length=64), nullable=True),
        sa.Column("due_at", TS, nullable=True),
        sa.Column("created_at", TS, nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_sla_alerts")),
        sa.UniqueConstraint(
            "conversation_id",
            "clock",
            "clock_started_at",
            "state",
            name=op.f("uq_sla_alerts_conversation_id_clock_clock_started_at_state"),
        ),
    )
    op.create_index(op.f("ix_sla_alerts_account_id_id"), "sla_alerts", ["account_id", "id"])
    op.create_table(
        "notifications",
        sa.Column("id", SEQ, autoincrement=True, nullable=False),
        sa.Column("account_id", sa.String(length=64), nullable=False),
        sa.Column("recipient", sa.String(length=64), nullable=False),
        sa.Column("alert_id", sa.BigInteger(), nullable=False),
        sa.Column("created_at", TS, nullable=False),
        sa.Column("acked_at", TS, nullable=True),
        sa.ForeignKeyConstraint(
            ["alert_id"], ["sla_alerts.id"], name=op.f("fk_notifications_alert_id_sla_alerts"), ondelete="CASCADE"
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_notifications")),
    )
    op.create_index(
        op.f("ix_notifications_account_id_recipient_acked_at"), "notifications", ["account_id", "recipient", "acked_at"]
    )
    op.create_table(
        "alert_webhooks",
        sa.Column("account_id", sa.String(length=64), nullable=False),
        sa.Column("url", sa.String(length=2000), nullable=False),
        sa.Column("secret_encrypted", sa.Text(), nullable=False),
        sa.Column("updated_at", TS, server_default=sa.func.now(), nullable=False),
        sa.ForeignKeyConstraint(
            ["account_id"], ["accounts.id"], name=op.f("fk_alert_webhooks_account_id_accounts"), ondelete="CASCADE"
        ),
        sa.PrimaryKeyConstraint("account_id", name=op.f("pk_alert_webhooks")),
    )
    op.create_table(
        "alert_deliveries",
        sa.Column("alert_id", sa.BigInteger(), nullable=False),
        sa.Column("account_id", sa.String(length=64), nullable=False),
        sa.Column("attempts", sa.Integer(), server_default="0", nullable=False),
        sa.Column("next_attempt_at", TS, nullable=False),
        sa.Column("delivered_at", TS, nullable=True),
        sa.Column("last_error", sa.String(length=200), nullable=True),
        sa.ForeignKeyConstraint(
            ["alert_id"], ["sla_alerts.id"], name=op.f("fk_alert_deliveries_alert_id_sla_alerts"), ondelete="CASCADE"
        ),
        sa.PrimaryKeyConstraint("alert_id", name=op.f("pk_alert_deliveries")),
    )
    op.create_index(
        op.f("ix_alert_deliveries_delivered_at_next_attempt_at"), "alert_deliveries", ["delivered_at", "next_attempt_at"]
    )
    if op.get_bind().dialect.name == "postgresql":
        op.execute(PG_FUNCTION)
        op.execute(PG_TRIGGER)
    else:
        for ddl in SQLITE_TRIGGERS:
            op.execute(ddl)


def downgrade() -> None:
    if op.get_bind().dialect.name == "postgresql":
        op.execute("DROP TRIGGER IF EXISTS trg_conversations_live ON conversations")
        op.execute("DROP FUNCTION IF EXISTS beazap_live_change()")
    else:
        op.execute("DROP TRIGGER IF EXISTS trg_conversations_live_insert")
        op.execute("DROP TRIGGER IF EXISTS trg_conversations_live_update")
    for table in ("alert_deliveries", "alert_webhooks", "notifications", "sla_alerts", "attendant_presence"):
        op.drop_table(table)
    op.drop_table("quick_replies")
    op.drop_table("live_changes")
