"""merge the ops core, LLM and governance branches into one head

Revision ID: 0008_merge_heads
Revises: 0002_ops_core, 0003_llm, 0007_governance
Create Date: 2026-11-25
"""

from collections.abc import Sequence

revision: str = "0008_merge_heads"
down_revision: str | Sequence[str] | None = ("0002_ops_core", "0003_llm", "0007_governance")
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    pass


def downgrade() -> None:
    pass
