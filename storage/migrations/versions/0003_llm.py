"""llm: routing job queue, per-tenant usage, answer cache

Revision ID: 0003_llm
Revises: 0001_initial
Create Date: 2026-11-25
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0003_llm"
down_revision: str | None = "0001_initial"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

TS = sa.DateTime(timezone=True)


def upgrade() -> None:
    op.create_table(
        "llm_jobs",
        sa.Column("id", sa.String(length=64), nullable=False),
        sa.Column("kind", sa.String(length=20), nullable=False),
        sa.Column("instance_id", sa.String(length=100), nullable=False),
        sa.Column("conversation_id", sa.String(length=64), nullable=False),
        sa.Column("contact_key", sa.String(length=100), nullable=True),
        sa.Column("status", sa.String(length=10), server_default="queued", nullable=False),
        sa.Column("attempts", sa.Integer(), server_default="0", nullable=False),
        sa.Column("run_after", TS, nullable=False),
        sa.Column("locked_by", sa.String(length=100), nullable=True),
        sa.Column("locked_until", TS, nullable=True),
        sa.Column("last_error", sa.Text(), nullable=True),
        sa.Column("result", sa.JSON(), nullable=True),
        sa.Column("created_at", TS, server_default=sa.func.now(), nullable=False),
        sa.Column("updated_at", TS, server_default=sa.func.now(), nullable=False),
        sa.ForeignKeyConstraint(
            ["instance_id"], ["instances.id"], name=op.f("fk_llm_jobs_instance_id_instances"), ondelete="CASCADE"
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_llm_jobs")),
        sa.UniqueConstraint("kind", "conversation_id", name=op.f("uq_llm_jobs_kind_conversation_id")),
    )
    op.create_index(op.f("ix_llm_jobs_status_run_after"), "llm_jobs", ["status", "run_after"], unique=False)
    op.create_index(op.f("ix_llm_jobs_instance_id"), "llm_jobs", ["instance_id"], unique=False)

    op.create_table(
        "llm_usage",
        sa.Column("account_id", sa.String(length=64), nullable=False),
        sa.Column("day", sa.Date(), nullable=False),
        sa.Column("purpose", sa.String(length=20), nullable=False),
        sa.Column("requests", sa.BigInteger(), server_default="0", nullable=False),
        sa.Column("prompt_tokens", sa.BigInteger(), server_default="0", nullable=False),
        sa.Column("completion_tokens", sa.BigInteger(), server_default="0", nullable=False),
        sa.Column("failures", sa.BigInteger(), server_default="0", nullable=False),
        sa.Column("cache_hits", sa.BigInteger(), server_default="0", nullable=False),
        sa.Column("updated_at", TS, server_default=sa.func.now(), nullable=False),
        sa.ForeignKeyConstraint(
            ["account_id"], ["accounts.id"], name=op.f("fk_llm_usage_account_id_accounts"), ondelete="CASCADE"
        ),
        sa.PrimaryKeyConstraint("account_id", "day", "purpose", name=op.f("pk_llm_usage")),
    )

    op.create_table(
        "llm_cache",
        sa.Column("account_id", sa.String(length=64), nullable=False),
        sa.Column("purpose", sa.String(length=20), nullable=False),
        sa.Column("content_hash", sa.String(length=64), nullable=False),
        sa.Column("prompt_version", sa.String(length=40), nullable=False),
        sa.Column("model", sa.String(length=200), nullable=False),
        sa.Column("result", sa.JSON(), nullable=False),
        sa.Column("prompt_tokens", sa.Integer(), server_default="0", nullable=False),
        sa.Column("completion_tokens", sa.Integer(), server_default="0", nullable=False),
        sa.Column("created_at", TS, server_default=sa.func.now(), nullable=False),
        sa.ForeignKeyConstraint(
            ["account_id"], ["accounts.id"], name=op.f("fk_llm_cache_account_id_accounts"), ondelete="CASCADE"
        ),
        sa.PrimaryKeyConstraint(
            "account_id", "purpose", "content_hash", "prompt_version", "model", name=op.f("pk_llm_cache")
        ),
    )


def downgrade() -> None:
    op.drop_table("llm_cache")
    op.drop_table("llm_usage")
    op.drop_index(op.f("ix_llm_jobs_instance_id"), table_name="llm_jobs")
    op.drop_index(op.f("ix_llm_jobs_status_run_after"), table_name="llm_jobs")
    op.drop_table("llm_jobs")
