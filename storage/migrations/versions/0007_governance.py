"""governance: erasure_audit

Revision ID: 0007_governance
Revises: 0001_initial
Create Date: 2026-11-25
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0007_governance"
down_revision: str | None = "0001_initial"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "erasure_audit",
        sa.Column("id", sa.String(length=64), nullable=False),
        sa.Column("subject_hash", sa.String(length=64), nullable=False),
        sa.Column("lid_hashes", sa.JSON(), nullable=False),
        sa.Column("requested_by", sa.String(length=200), nullable=False),
        sa.Column("requested_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("completed_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("status", sa.String(length=20), nullable=False),
        sa.Column("tables", sa.JSON(), nullable=True),
        sa.Column("verified_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("verification", sa.JSON(), nullable=True),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_erasure_audit")),
    )
    op.create_index(op.f("ix_erasure_audit_subject_hash"), "erasure_audit", ["subject_hash"], unique=False)


def downgrade() -> None:
    op.drop_index(op.f("ix_erasure_audit_subject_hash"), table_name="erasure_audit")
    op.drop_table("erasure_audit")
