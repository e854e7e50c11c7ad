"""Extract the store's own actions into ``bronze/ops_events`` so silver uses the same facts.

Actions taken here (``actions.source = 'store'``) not yet extracted are appended to the lake in one
commit, then marked ``extracted_at``. If the process dies between the two steps, the next run finds
the action ids already in bronze and only marks them: nothing is lost or written twice.
"""

from __future__ import annotations

import json
from datetime import UTC, datetime
from typing import Any

import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.dataset as ds
from sqlalchemy import Engine, bindparam, select, update

from bronze.schema import OPS_EVENTS, OPS_EVENTS_SCHEMA
from bronze.tables import ensure_tables
from core.utc import as_utc
from storage.lake import Lake
from storage.tables import actions


def _already_in_lake(lake: Lake, ids: list[str]) -> set[str]:
    dt = lake.open_or_none(OPS_EVENTS)
    if dt is None or not ids:
        return set()
    dataset = lake.dataset(OPS_EVENTS, dt)
    found = dataset.to_table(columns=["action_id"], filter=ds.field("action_id").isin(ids))
    return set(pc.unique(found["action_id"].cast(pa.string())).to_pylist())


def _lake_row(row: dict[str, Any], now: datetime) -> dict[str, Any]:
    details = row["details"] if isinstance(row["details"], dict) else None
    occurred = as_utc(row["occurred_at"])
    conversation_id = row["conversation_id"] or (details or {}).get("conversation_id")
    return {
        "action_id": row["id"],
        "instance": row["instance_id"],
        "conversation_id": conversation_id,
        "contact_key": row["contact_key"],
        "action": row["action"],
        "actor_id": row["actor_id"],
        "attendant_id": row["attendant_id"],
        "team_id": row["team_id"],
        "occurred_at": occurred,
        "extracted_at": now,
        "occurred_date": occurred.astimezone(UTC).date(),
        "details": json.dumps(details, sort_keys=True) if details is not None else None,
    }


def extract_actions(engine: Engine, lake: Lake, *, limit: int = 50_000) -> int:
    """Append not-yet-extracted store actions to bronze/ops_events; returns how many were appended."""
    a = actions
    with engine.connect() as conn:
        rows = [
            dict(r._mapping)
            for r in conn.execute(
                select(a)
                .where(a.c.source == "store", a.c.extracted_at.is_(None))
                .order_by(a.c.occurred_at, a.c.id)
                .limit(limit)
            )
        ]
    if not rows:
        return 0
    now = datetime.now(UTC)
    present = _already_in_lake(lake, [r["id"] for r in rows])
    fresh = [_lake_row(r, now) for r in rows if r["id"] not in present]
    if fresh:
        ensure_tables(lake, OPS_EVENTS)
        lake.write(OPS_EVENTS, pa.Table.from_pylist(fresh, schema=OPS_EVENTS_SCHEMA))
    with engine.begin() as conn:
        conn.execute(
            update(a).where(a.c.id == bindparam("b_id")).values(extracted_at=now),
            [{"b_id": r["id"]} for r in rows],
        )
    return len(fresh)
