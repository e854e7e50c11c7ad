"""instance configuration: one stored shape for the SLA policy, no time-zone literal in the schema

The flat SLA policy of the first operational API (``{"first_response_minutes": 10,
"next_reply_minutes": 30, "resolution_minutes": 1440, "at_risk_ratio": 0.8}``) becomes the nested
shape of ``core/instance_config.py`` (``{"first_response": {"minutes": 10, "basis": "calendar"}, …}``).
The flat keys were only read by the live store, which measured them in calendar time, so they keep
that basis. A nested key already present wins over its flat twin. ``instances.timezone`` loses its
server default on PostgreSQL: the application writes ``BEAZAP_DEFAULT_TIMEZONE`` when none is
given.

Revision ID: 0010_instance_config
Revises: 0009_leases
Create Date: 2026-12-07
"""

import json
from collections.abc import Sequence
from typing import Any

import sqlalchemy as sa
from alembic import op

revision: str = "0010_instance_config"
down_revision: str | Sequence[str] | None = "0009_leases"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

FLAT = {
    "first_response_minutes": "first_response",
    "next_reply_minutes": "next_reply",
    "resolution_minutes": "resolution",
}

instances = sa.table("instances", sa.column("id", sa.String), sa.column("sla_policy", sa.JSON))


def nested(policy: dict[str, Any]) -> dict[str, Any]:
    """The nested shape of a (possibly) flat policy."""
    out = {k: v for k, v in policy.items() if k not in FLAT}
    for flat, clock in FLAT.items():
        value = policy.get(flat)
        if clock not in out and isinstance(value, int | float) and not isinstance(value, bool) and value > 0:
            out[clock] = {"minutes": float(value), "basis": "calendar"}
    return out


def flat(policy: dict[str, Any]) -> dict[str, Any]:
    """The flat shape (downgrade): minutes only; basis and team overrides are dropped."""
    out = {k: v for k, v in policy.items() if k not in FLAT.values()}
    for key, clock in FLAT.items():
        target = policy.get(clock)
        if isinstance(target, dict) and "minutes" in target:
            out[key] = target["minutes"]
    return out


def _rewrite(convert: Any) -> None:
    conn = op.get_bind()
    for row in conn.execute(sa.select(instances.c.id, instances.c.sla_policy)).all():
        policy = row.sla_policy
        if isinstance(policy, str):  # defensive: a JSON document stored as text
            policy = json.loads(policy)
        if not isinstance(policy, dict):
            continue
        new = convert(policy)
        if new != policy:
            conn.execute(sa.update(instances).where(instances.c.id == row.id).values(sla_policy=new))


def upgrade() -> None:
    _rewrite(nested)
    # SQLite cannot drop a column default without rebuilding ``instances`` (which other tables
    # reference), so there the old default stays in the file's schema; BeaZap always writes the zone.
    if op.get_bind().dialect.name == "postgresql":
        op.alter_column("instances", "timezone", existing_type=sa.String(length=64), server_default=None)


def downgrade() -> None:
    if op.get_bind().dialect.name == "postgresql":
        op.alter_column(
            "instances", "timezone", existing_type=sa.String(length=64), server_default=sa.text("'America/Sao_Paulo'")
        )
    _rewrite(flat)
