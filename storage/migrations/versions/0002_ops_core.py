"""ops core: teams, attendants, conversations, messages (monthly partitions on PostgreSQL), action log,
pending message events, projector cursors, outbound send ledger, contact aliases, instance watermarks

Revision ID: 0002_ops_core
Revises: 0001_initial
Create Date: 2026-11-25
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0002_ops_core"
down_revision: str | None = "0001_initial"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

TS = sa.DateTime(timezone=True)
SLA_WHERE = "status = 'open' AND first_response_at IS NULL"


def upgrade() -> None:
    op.add_column("instances", sa.Column("routing", sa.JSON(), nullable=True))
    op.create_table(
        "teams",
        sa.Column("id", sa.String(length=64), nullable=False),
        sa.Column("instance_id", sa.String(length=100), nullable=False),
        sa.Column("name", sa.String(length=200), nullable=False),
        sa.Column("created_at", TS, server_default=sa.func.now(), nullable=False),
        sa.Column("updated_at", TS, server_default=sa.func.now(), nullable=False),
        sa.ForeignKeyConstraint(
            ["instance_id"], ["instances.id"], name=op.f("fk_teams_instance_id_instances"), ondelete="CASCADE"
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_teams")),
    )
    op.create_index(op.f("ix_teams_instance_id"), "teams", ["instance_id"], unique=False)

    op.create_table(
        "attendants",
        sa.Column("id", sa.String(length=64), nullable=False),
        sa.Column("instance_id", sa.String(length=100), nullable=False),
        sa.Column("team_id", sa.String(length=64), nullable=True),
        sa.Column("name", sa.String(length=200), nullable=False),
        sa.Column("email", sa.String(length=320), nullable=True),
        sa.Column("capacity", sa.Integer(), server_default="5", nullable=False),
        sa.Column("available", sa.Boolean(), server_default=sa.true(), nullable=False),
        sa.Column("active", sa.Boolean(), server_default=sa.true(), nullable=False),
        sa.Column("last_assigned_at", TS, nullable=True),
        sa.Column("created_at", TS, server_default=sa.func.now(), nullable=False),
        sa.Column("updated_at", TS, server_default=sa.func.now(), nullable=False),
        sa.ForeignKeyConstraint(
            ["instance_id"], ["instances.id"], name=op.f("fk_attendants_instance_id_instances"), ondelete="CASCADE"
        ),
        sa.ForeignKeyConstraint(["team_id"], ["teams.id"], name=op.f("fk_attendants_team_id_teams"), ondelete="SET NULL"),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_attendants")),
    )
    op.create_index(op.f("ix_attendants_instance_id"), "attendants", ["instance_id"], unique=False)
    op.create_index(op.f("ix_attendants_team_id"), "attendants", ["team_id"], unique=False)

    op.create_table(
        "conversations",
        sa.Column("id", sa.String(length=64), nullable=False),
        sa.Column("instance_id", sa.String(length=100), nullable=False),
        sa.Column("contact_key", sa.String(length=100), nullable=False),
        sa.Column("chat_jid", sa.String(length=100), nullable=True),
        sa.Column("origin", sa.String(length=10), nullable=False),
        sa.Column("opening_message_id", sa.String(length=100), nullable=False),
        sa.Column("opened_at", TS, nullable=False),
        sa.Column("first_response_at", TS, nullable=True),
        sa.Column("first_response_message_id", sa.String(length=100), nullable=True),
        sa.Column("first_responder_id", sa.String(length=64), nullable=True),
        sa.Column("last_message_at", TS, nullable=False),
        sa.Column("last_inbound_at", TS, nullable=True),
        sa.Column("awaiting_since", TS, nullable=True),
        sa.Column("status", sa.String(length=10), nullable=False),
        sa.Column("resolved_at", TS, nullable=True),
        sa.Column("resolved_by", sa.String(length=64), nullable=True),
        sa.Column("expired_at", TS, nullable=True),
        sa.Column("closed_at", TS, nullable=True),
        sa.Column("first_assigned_at", TS, nullable=True),
        sa.Column("assignee_id", sa.String(length=64), nullable=True),
        sa.Column("team_id", sa.String(length=64), nullable=True),
        sa.Column("inbound_count", sa.Integer(), server_default="0", nullable=False),
        sa.Column("outbound_count", sa.Integer(), server_default="0", nullable=False),
        sa.Column("previous_conversation_id", sa.String(length=64), nullable=True),
        sa.Column("is_reopen", sa.Boolean(), server_default=sa.false(), nullable=False),
        sa.Column("reopened", sa.Boolean(), server_default=sa.false(), nullable=False),
        sa.Column("version", sa.Integer(), server_default="1", nullable=False),
        sa.Column("updated_at", TS, server_default=sa.func.now(), nullable=False),
        sa.ForeignKeyConstraint(
            ["instance_id"], ["instances.id"], name=op.f("fk_conversations_instance_id_instances"), ondelete="CASCADE"
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_conversations")),
    )
    # The seed's indexes, exactly, and the ones the projector and queue need.
    op.create_index("ix_conversations_instance_id_opened_at", "conversations", ["instance_id", "opened_at"])
    op.create_index("ix_conversations_instance_id_status", "conversations", ["instance_id", "status"])
    op.create_index(
        "ix_conversations_sla_open",
        "conversations",
        ["instance_id", "status"],
        postgresql_where=sa.text(SLA_WHERE),
        sqlite_where=sa.text(SLA_WHERE),
    )
    op.create_index(
        "ix_conversations_instance_id_contact_key_opened_at",
        "conversations",
        ["instance_id", "contact_key", "opened_at"],
    )
    op.create_index("ix_conversations_assignee_id_status", "conversations", ["assignee_id", "status"])

    # messages: PARTITION BY RANGE ("timestamp") on PostgreSQL (the kwarg is ignored by SQLite).
    op.create_table(
        "messages",
        sa.Column("instance_id", sa.String(length=100), nullable=False),
        sa.Column("message_id", sa.String(length=100), nullable=False),
        sa.Column("timestamp", TS, nullable=False),
        sa.Column("conversation_id", sa.String(length=64), nullable=True),
        sa.Column("contact_key", sa.String(length=100), nullable=True),
        sa.Column("chat_jid", sa.String(length=100), nullable=True),
        sa.Column("direction", sa.String(length=10), nullable=False),
        sa.Column("kind", sa.String(length=20), nullable=False),
        sa.Column("text", sa.Text(), nullable=True),
        sa.Column("status", sa.String(length=20), nullable=True),
        sa.Column("edited", sa.Boolean(), server_default=sa.false(), nullable=False),
        sa.Column("revoked", sa.Boolean(), server_default=sa.false(), nullable=False),
        sa.Column("automated", sa.Boolean(), server_default=sa.false(), nullable=False),
        sa.Column("sender_attendant_id", sa.String(length=64), nullable=True),
        sa.Column("created_at", TS, server_default=sa.func.now(), nullable=False),
        sa.PrimaryKeyConstraint("instance_id", "message_id", "timestamp", name=op.f("pk_messages")),
        postgresql_partition_by='RANGE ("timestamp")',
    )
    op.create_index("ix_messages_conversation_id_timestamp", "messages", ["conversation_id", "timestamp"])
    if op.get_bind().dialect.name == "postgresql":
        # A default partition keeps any out-of-range message; monthly partitions are created here for
        # the current month and the next three, then by `beazap ops maintain-partitions`.
        op.execute("CREATE TABLE messages_default PARTITION OF messages DEFAULT")
        op.execute(
            """
            DO $$
            DECLARE m date := date_trunc('month', now() AT TIME ZONE 'UTC')::date;
            BEGIN
              FOR i IN 0..3 LOOP
                EXECUTE format(
                  'CREATE TABLE IF NOT EXISTS %I PARTITION OF messages FOR VALUES FROM (%L) TO (%L)',
                  'messages_p' || to_char(m + make_interval(months => i), 'YYYYMM'),
                  (m + make_interval(months => i))::timestamp AT TIME ZONE 'UTC',
                  (m + make_interval(months => i + 1))::timestamp AT TIME ZONE 'UTC');
              END LOOP;
            END $$;
            """
        )

    op.create_table(
        "actions",
        sa.Column("id", sa.String(length=64), nullable=False),
        sa.Column("instance_id", sa.String(length=100), nullable=False),
        sa.Column("conversation_id", sa.String(length=64), nullable=True),
        sa.Column("contact_key", sa.String(length=100), nullable=True),
        sa.Column("action", sa.String(length=20), nullable=False),
        sa.Column("actor_id", sa.String(length=64), nullable=True),
        sa.Column("attendant_id", sa.String(length=64), nullable=True),
        sa.Column("team_id", sa.String(length=64), nullable=True),
        sa.Column("message_id", sa.String(length=100), nullable=True),
        sa.Column("occurred_at", TS, nullable=False),
        sa.Column("details", sa.JSON(), nullable=True),
        sa.Column("source", sa.String(length=10), server_default="store", nullable=False),
        sa.Column("extracted_at", TS, nullable=True),
        sa.Column("created_at", TS, server_default=sa.func.now(), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_actions")),
    )
    op.create_index(op.f("ix_actions_conversation_id_occurred_at"), "actions", ["conversation_id", "occurred_at"])
    op.create_index(
        op.f("ix_actions_instance_id_contact_key_occurred_at"), "actions", ["instance_id", "contact_key", "occurred_at"]
    )
    op.create_index(op.f("ix_actions_instance_id_message_id"), "actions", ["instance_id", "message_id"])
    op.create_index(op.f("ix_actions_source_extracted_at"), "actions", ["source", "extracted_at"])

    op.create_table(
        "pending_message_events",
        sa.Column("instance_id", sa.String(length=100), nullable=False),
        sa.Column("message_id", sa.String(length=100), nullable=False),
        sa.Column("status", sa.String(length=20), nullable=True),
        sa.Column("text", sa.Text(), nullable=True),
        sa.Column("edited", sa.Boolean(), server_default=sa.false(), nullable=False),
        sa.Column("revoked", sa.Boolean(), server_default=sa.false(), nullable=False),
        sa.Column("received_at", TS, server_default=sa.func.now(), nullable=False),
        sa.PrimaryKeyConstraint("instance_id", "message_id", name=op.f("pk_pending_message_events")),
    )
    op.create_table(
        "projector_cursors",
        sa.Column("name", sa.String(length=100), nullable=False),
        sa.Column("version", sa.BigInteger(), nullable=False),
        sa.Column("row_offset", sa.BigInteger(), server_default="0", nullable=False),
        sa.Column("updated_at", TS, server_default=sa.func.now(), nullable=False),
        sa.PrimaryKeyConstraint("name", name=op.f("pk_projector_cursors")),
    )
    op.create_table(
        "outbound_requests",
        sa.Column("instance_id", sa.String(length=100), nullable=False),
        sa.Column("idempotency_key", sa.String(length=200), nullable=False),
        sa.Column("conversation_id", sa.String(length=64), nullable=False),
        sa.Column("attendant_id", sa.String(length=64), nullable=True),
        sa.Column("request_hash", sa.String(length=64), nullable=False),
        sa.Column("status", sa.String(length=10), nullable=False),
        sa.Column("message_id", sa.String(length=100), nullable=True),
        sa.Column("response", sa.JSON(), nullable=True),
        sa.Column("error", sa.Text(), nullable=True),
        sa.Column("created_at", TS, server_default=sa.func.now(), nullable=False),
        sa.Column("updated_at", TS, server_default=sa.func.now(), nullable=False),
        sa.PrimaryKeyConstraint("instance_id", "idempotency_key", name=op.f("pk_outbound_requests")),
    )


    op.create_table(
        "contact_aliases",
        sa.Column("instance_id", sa.String(length=100), nullable=False),
        sa.Column("lid", sa.String(length=100), nullable=False),
        sa.Column("phone", sa.String(length=32), nullable=False),
        sa.Column("learned_at", TS, server_default=sa.func.now(), nullable=False),
        sa.PrimaryKeyConstraint("instance_id", "lid", name=op.f("pk_contact_aliases")),
    )
    op.create_index(op.f("ix_contact_aliases_instance_id_phone"), "contact_aliases", ["instance_id", "phone"])
    op.create_table(
        "instance_watermarks",
        sa.Column("instance_id", sa.String(length=100), nullable=False),
        sa.Column("watermark", TS, nullable=False),
        sa.PrimaryKeyConstraint("instance_id", name=op.f("pk_instance_watermarks")),
    )


def downgrade() -> None:
    op.drop_table("instance_watermarks")
    op.drop_index(op.f("ix_contact_aliases_instance_id_phone"), table_name="contact_aliases")
    op.drop_table("contact_aliases")
    op.drop_table("outbound_requests")
    op.drop_table("projector_cursors")
    op.drop_table("pending_message_events")
    op.drop_index(op.f("ix_actions_source_extracted_at"), table_name="actions")
    op.drop_index(op.f("ix_actions_instance_id_message_id"), table_name="actions")
    op.drop_index(op.f("ix_actions_instance_id_contact_key_occurred_at"), table_name="actions")
    op.drop_index(op.f("ix_actions_conversation_id_occurred_at"), table_name="actions")
    op.drop_table("actions")
    op.drop_index("ix_messages_conversation_id_timestamp", table_name="messages")
    op.drop_table("messages")  # drops its partitions with it on PostgreSQL
    for name in (
        "ix_conversations_assignee_id_status",
        "ix_conversations_instance_id_contact_key_opened_at",
        "ix_conversations_sla_open",
        "ix_conversations_instance_id_status",
        "ix_conversations_instance_id_opened_at",
    ):
        op.drop_index(name, table_name="conversations")
    op.drop_table("conversations")
    op.drop_index(op.f("ix_attendants_team_id"), table_name="attendants")
    op.drop_index(op.f("ix_attendants_instance_id"), table_name="attendants")
    op.drop_table("attendants")
    op.drop_index(op.f("ix_teams_instance_id"), table_name="teams")
    op.drop_table("teams")
    with op.batch_alter_table("instances") as batch_op:
        batch_op.drop_column("routing")
