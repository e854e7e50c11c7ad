"""console: a message's ack, edit or revoke is a change of its conversation in the live feed

The conversation view must see a tick turn to "read" (or a message edited or deleted) within
seconds, but those facts update ``messages`` only, never the conversation row that 0013's trigger
watches. This trigger appends the message's conversation to ``live_changes`` when its status, text,
edited/revoked flags or conversation change, so the existing feed and stream carry it (one event
per conversation and tick, the page then refetches its transcript). New messages need nothing: they
already update their conversation.

Revision ID: 0014_message_changes
Revises: 0013_console
Create Date: 2026-12-07
"""

from collections.abc import Sequence

from alembic import op

revision: str = "0014_message_changes"
down_revision: str | Sequence[str] | None = "0013_console"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

PG_FUNCTION = """
CREATE OR REPLACE FUNCTION beazap_live_message_change() RETURNS trigger AS $$
BEGIN
    INSERT INTO live_changes (instance_id, conversation_id) VALUES (NEW.instance_id, NEW.conversation_id);
    PERFORM pg_notify('beazap_live', NEW.instance_id);
    RETURN NULL;
END $$ LANGUAGE plpgsql
"""
# Row triggers on the partitioned parent are cloned onto every partition, present and future.
PG_TRIGGER = """
CREATE TRIGGER trg_messages_live AFTER UPDATE ON messages
FOR EACH ROW WHEN (
    NEW.conversation_id IS NOT NULL AND (
        NEW.status IS DISTINCT FROM OLD.status OR NEW.text IS DISTINCT FROM OLD.text
        OR NEW.edited IS DISTINCT FROM OLD.edited OR NEW.revoked IS DISTINCT FROM OLD.revoked
        OR NEW.conversation_id IS DISTINCT FROM OLD.conversation_id))
EXECUTE FUNCTION beazap_live_message_change()
"""
SQLITE_TRIGGER = """
CREATE TRIGGER trg_messages_live AFTER UPDATE ON messages
WHEN NEW.conversation_id IS NOT NULL AND (
    NEW.status IS NOT OLD.status OR NEW.text IS NOT OLD.text
    OR NEW.edited IS NOT OLD.edited OR NEW.revoked IS NOT OLD.revoked
    OR NEW.conversation_id IS NOT OLD.conversation_id)
BEGIN
    INSERT INTO live_changes (instance_id, conversation_id) VALUES (NEW.instance_id, NEW.conversation_id);
END
"""


def upgrade() -> None:
    if op.get_bind().dialect.name == "postgresql":
        op.execute(PG_FUNCTION)
        op.execute(PG_TRIGGER)
    else:
        op.execute(SQLITE_TRIGGER)


def downgrade() -> None:
    if op.get_bind().dialect.name == "postgresql":
        op.execute("DROP TRIGGER IF EXISTS trg_messages_live ON messages")
        op.execute("DROP FUNCTION IF EXISTS beazap_live_message_change()")
    else:
        op.execute("DROP TRIGGER IF EXISTS trg_messages_live")
