"""SLA outcomes per basis (docs/metrics.md § SLA): each calendar row is decided on calendar time and
each business row on business time; the policy's basis picks the headline achievement.

Hand-computed case, default policy (first response 15 business minutes) and default schedule
(Monday–Friday 08:00–18:00, America/Sao_Paulo): a customer writes on Monday 2026-03-09 at 17:50 local
and is answered on Tuesday at 08:04 local. Calendar FRT = 14 h 14 min = 51,240 s (breached, 50,340 s
past the 900 s target); business FRT = 10 + 4 min = 840 s (met). Checked in gold
(``conversation_facts``, ``sla_daily``) and in both serving paths (SQL and numpy).
"""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, date, datetime
from pathlib import Path
from typing import Any

import pytest

from gold.runner import build_gold
from gold.serving import fast
from gold.serving import queries as q
from gold.serving.reader import GoldReader
from storage.duck import connect
from storage.lake import Lake
from tests.support.gold_fixtures import write_silver

OPENED = datetime(2026, 3, 9, 20, 50, tzinfo=UTC)  # Monday 17:50 in São Paulo (UTC−3)
ANSWERED = datetime(2026, 3, 10, 11, 4, tzinfo=UTC)  # Tuesday 08:04 local
RESOLVED = datetime(2026, 3, 10, 11, 30, tzinfo=UTC)
CALENDAR_FRT = 14 * 3600 + 14 * 60
BUSINESS_FRT = 10 * 60 + 4 * 60
TARGET = 15 * 60


@pytest.fixture(scope="module")
def lake(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Lake]:
    root: Path = tmp_path_factory.mktemp("sla_basis")
    lake = Lake(root=str(root))
    write_silver(
        lake,
        "conversations",
        [
            {
                "conversation_id": "c1",
                "instance_id": "i1",
                "contact_key": "+5511999990000",
                "origin": "inbound",
                "status": "resolved",
                "opened_at": OPENED,
                "first_response_at": ANSWERED,
                "first_responder_id": "ana",
                "assignee_id": "ana",
                "first_assigned_at": OPENED,
                "resolved_at": RESOLVED,
                "closed_at": RESOLVED,
                "last_message_at": RESOLVED,
            }
        ],
    )
    build_gold(lake, as_of=datetime(2026, 3, 20, tzinfo=UTC))
    yield lake


def test_facts_carry_the_outcome_on_each_basis(lake: Lake) -> None:
    con = connect(lake)
    try:
        row = con.execute(
            "select frt_seconds, frt_business_seconds, frt_basis, frt_sla, frt_sla_calendar, frt_sla_business,"
            " frt_overdue_calendar_seconds, frt_overdue_business_seconds from gold.conversation_facts"
        ).fetchone()
    finally:
        con.close()
    assert row == (CALENDAR_FRT, BUSINESS_FRT, "business", "met", "breached", "met", CALENDAR_FRT - TARGET, None)


def test_sla_daily_rows_are_decided_on_their_own_basis(lake: Lake) -> None:
    con = connect(lake)
    try:
        rows = con.execute(
            "select basis, count, median_seconds, sla_met, sla_breached, achievement_pct, breached_overdue_seconds "
            "from gold.sla_daily where clock = 'first_response' and team_id = '*' and attendant_id = '*' "
            "order by basis"
        ).fetchall()
    finally:
        con.close()
    assert rows == [
        ("business", 1, BUSINESS_FRT, 1, 0, 100.0, None),
        ("calendar", 1, CALENDAR_FRT, 0, 1, 0.0, CALENDAR_FRT - TARGET),
    ]


def _first_response(answer: dict[str, Any]) -> dict[str, dict[str, Any]]:
    return {c["basis"]: c for c in answer["clocks"] if c["clock"] == "first_response"}


def test_serving_paths_agree_per_basis_and_headline_uses_policy_basis(lake: Lake) -> None:
    reader = GoldReader(lake, background=False)
    f = q.Filters(instance_ids=["i1"], start=date(2026, 3, 9), end=date(2026, 3, 15))
    with reader.cursor() as con:
        by_sql = q.sla(con, f)
        overview_sql = q.overview(con, f)
    by_numpy = fast.sla(reader.arrays(), f)
    overview_numpy = fast.overview(reader.arrays(), f)
    for answer in (by_sql, by_numpy):
        clocks = _first_response(answer)
        assert (clocks["calendar"]["sla_met"], clocks["calendar"]["sla_breached"]) == (0, 1)
        assert clocks["calendar"]["achievement_pct"] == 0.0
        assert clocks["calendar"]["breached_overdue_seconds"] == CALENDAR_FRT - TARGET
        assert (clocks["business"]["sla_met"], clocks["business"]["sla_breached"]) == (1, 0)
        assert clocks["business"]["achievement_pct"] == 100.0
        assert answer["rows"][0]["frt_achievement_pct"] == 100.0  # daily series: the policy's basis
    for overview in (overview_sql, overview_numpy):
        assert overview["current"]["frt_sla_achievement_pct"] == 100.0
    reader.close()
