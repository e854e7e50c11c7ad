"""End to end: silver, gold and the live store built from simulated bronze equal the simulator's ground truth.

This checks both sides at once: the simulator's reference sessionizer (``beazap.simulator.truth``)
and silver's SQL implement ``docs/metrics.md`` independently, so any disagreement is a bug in one of them.
"""

from __future__ import annotations

from collections import Counter
from datetime import date
from typing import Any

import pytest

from beazap.simulator import SimulationConfig, simulate, write_bronze

CONVERSATION_COLUMNS = (
    "instance_id", "contact_key", "origin", "opening_message_id", "opened_at", "first_response_at",
    "first_response_message_id", "first_responder_id", "last_message_at", "last_inbound_at", "status",
    "resolved_at", "resolved_by", "expired_at", "closed_at", "first_assigned_at", "assignee_id", "team_id",
    "inbound_count", "outbound_count", "previous_conversation_id", "is_reopen", "reopened",
)  # fmt: skip
MESSAGE_COLUMNS = (
    "direction", "kind", "chat_type", "event_at", "automated", "sender_attendant_id", "revoked", "edited",
    "status", "contact_key", "conversation_id",
)  # fmt: skip
CALL_COLUMNS = ("contact_key", "is_video", "offered_at", "accepted_at", "ended_at", "outcome")


@pytest.fixture(scope="module")
def built(tmp_path_factory: pytest.TempPathFactory) -> tuple[Any, Any]:
    pytest.importorskip("silver.pipeline")
    from core.settings import Settings
    from silver.pipeline import build_silver
    from storage.duck import connect
    from storage.lake import Lake

    root = tmp_path_factory.mktemp("lake")
    lake = Lake(str(root))
    sim = simulate(SimulationConfig(seed=7, instances=2, days=4, conversations_per_day=25, start=date(2026, 3, 5)))
    write_bronze(lake, sim)
    build_silver(lake, settings=Settings(lake_uri=str(root)))
    return sim, connect(lake)


def _rows(con: Any, table: str, key: str, columns: tuple[str, ...]) -> dict[str, dict[str, Any]]:
    cur = con.execute(f"select {key}, {', '.join(columns)} from {table}")
    return {r[0]: dict(zip(columns, r[1:], strict=True)) for r in cur.fetchall()}


def _diff(truth: dict[str, Any], got: dict[str, dict[str, Any]], columns: tuple[str, ...]) -> Counter[str]:
    problems: Counter[str] = Counter()
    for key, t in truth.items():
        g = got.get(key)
        if g is None:
            problems["missing"] += 1
            continue
        for col in columns:
            if getattr(t, col) != g[col]:
                problems[col] += 1
    problems["extra"] += len(set(got) - set(truth))
    return +problems


def test_silver_conversations_equal_the_ground_truth(built: tuple[Any, Any]) -> None:
    sim, con = built
    truth = {c.conversation_id: c for c in sim.ground_truth.conversations}
    got = _rows(con, "silver.conversations", "conversation_id", CONVERSATION_COLUMNS)
    assert not _diff(truth, got, CONVERSATION_COLUMNS)


def test_silver_messages_and_calls_equal_the_ground_truth(built: tuple[Any, Any]) -> None:
    sim, con = built
    truth = {m.message_id: m for m in sim.ground_truth.messages}
    assert not _diff(truth, _rows(con, "silver.messages", "message_id", MESSAGE_COLUMNS), MESSAGE_COLUMNS)
    calls = {c.call_id: c for c in sim.ground_truth.calls}
    assert not _diff(calls, _rows(con, "silver.calls", "call_id", CALL_COLUMNS), CALL_COLUMNS)


def test_gold_volumes_and_daily_conversations_equal_the_ground_truth(settings: Any, tmp_path: Any) -> None:
    pytest.importorskip("gold.runner")
    from beazap.simulator import register_instances
    from gold.runner import build_gold
    from silver.pipeline import build_silver
    from storage import migrate
    from storage.db import make_engine
    from storage.duck import connect
    from storage.lake import Lake

    lake = Lake.from_settings(settings)
    sim = simulate(SimulationConfig(seed=5, instances=2, days=3, conversations_per_day=15, start=date(2026, 3, 7)))
    engine = make_engine(f"sqlite:///{tmp_path / 'gold.db'}")
    migrate.upgrade(engine)
    register_instances(engine, sim)  # gold buckets days and hours in each instance's time zone
    write_bronze(lake, sim)
    build_silver(lake, settings=settings)
    build_gold(lake, engine=engine, settings=settings)
    con = connect(lake)
    g = sim.ground_truth

    daily = {
        tuple(r[:5]): r[5]
        for r in con.execute(
            "select instance_id, cast(day as varchar), direction, kind, chat_type, sum(messages) "
            "from gold.daily_volume group by all"
        ).fetchall()
    }
    assert daily == {(r["instance_id"], r["day"], r["direction"], r["kind"], r["chat_type"]): r["messages"]
                     for r in g.daily_volume}  # fmt: skip
    hourly = {
        tuple(r[:5]): r[5]
        for r in con.execute(
            "select instance_id, cast(day as varchar), hour, direction, chat_type, sum(messages) "
            "from gold.hourly_volume group by all"
        ).fetchall()
    }
    assert hourly == {(r["instance_id"], r["day"], r["hour"], r["direction"], r["chat_type"]): r["messages"]
                      for r in g.hourly_volume}  # fmt: skip
    convs = {
        tuple(r[:2]): tuple(r[2:])
        for r in con.execute(
            "select instance_id, cast(day as varchar), sum(opened), sum(resolved), sum(expired), sum(reopened) "
            "from gold.daily_conversations group by all having sum(opened) + sum(resolved) + sum(expired) > 0"
        ).fetchall()
    }
    assert convs == {(r["instance_id"], r["day"]): (r["opened"], r["resolved"], r["expired"], r["reopened"])
                     for r in g.daily_conversations}  # fmt: skip


def test_live_store_conversations_equal_the_ground_truth(engine: Any, tmp_path: Any) -> None:
    """The live projector (ops store, SQLite and PostgreSQL) agrees with the ground truth too."""
    pytest.importorskip("live.projector")
    from datetime import UTC, datetime

    import sqlalchemy as sa

    from beazap.simulator import register_instances
    from live.projector import run_once
    from storage.lake import Lake
    from storage.tables import conversations

    lake = Lake(str(tmp_path / "lake"))
    sim = simulate(SimulationConfig(seed=7, instances=2, days=2, conversations_per_day=20, start=date(2026, 3, 5)))
    register_instances(engine, sim)
    write_bronze(lake, sim)
    for _ in range(20):
        if not run_once(lake, engine):
            break
    with engine.connect() as conn:
        rows = conn.execute(sa.select(conversations)).mappings().all()

    def norm(value: Any) -> Any:
        return value.replace(tzinfo=UTC) if isinstance(value, datetime) and value.tzinfo is None else value

    got = {r["id"]: {col: norm(r[col]) for col in CONVERSATION_COLUMNS} for r in rows}
    truth = {c.conversation_id: c for c in sim.ground_truth.conversations}
    assert not _diff(truth, got, CONVERSATION_COLUMNS)
