"""End to end: silver built from simulated bronze equals the simulator's ground truth, column by column.

This checks both sides at once: the simulator's reference sessionizer (``beazap.simulator.truth``)
and silver's SQL implement ``METRICS.md`` independently, so any disagreement is a bug in one of them.
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
    "resolved_at", "resolved_by", "expired_at", "closed_at", "first_assigned_at", "assignee_id",
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
    from beazap.settings import Settings
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


@pytest.mark.xfail(reason="silver keeps the previous team after an `unassign` (truth: no assignee, no team)")
def test_silver_team_at_resolution_after_unassign(built: tuple[Any, Any]) -> None:
    sim, con = built
    truth = {c.conversation_id: c for c in sim.ground_truth.conversations}
    assert not _diff(truth, _rows(con, "silver.conversations", "conversation_id", ("team_id",)), ("team_id",))
