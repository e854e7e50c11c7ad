"""Business-hours clocks computed in gold SQL: nights, weekends, holidays, DST, effective-dated
schedules, against an independent Python reference (zoneinfo) and Hypothesis-generated intervals."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from core.instance_config import BusinessHours, InstanceConfig
from gold.runner import compute, prepare
from storage.lake import Lake
from tests.support.gold_fixtures import business_seconds_reference, write_silver


def run_frt(tmp: Path, intervals: list[tuple[datetime, datetime]], cfg: dict[str, Any]) -> list[float]:
    """Build gold for conversations opened at a and first-answered at b; return FRT business seconds."""
    lake = Lake(root=str(tmp))
    conv = [
        {
            "conversation_id": f"c{i:05d}",
            "instance_id": "i1",
            "contact_key": f"+55{i}",
            "origin": "inbound",
            "opened_at": a,
            "first_response_at": b,
            "first_responder_id": "att",
            "status": "resolved",
            "resolved_at": b,
            "closed_at": b,
        }
        for i, (a, b) in enumerate(intervals)
    ]
    write_silver(lake, "conversations", conv)
    con = prepare(lake, as_of=datetime(2030, 1, 1, tzinfo=UTC))
    config = InstanceConfig.model_validate({k: v for k, v in cfg.items() if v is not None})
    from gold.config import GoldInstance, config_tables

    for name, table in config_tables([GoldInstance("i1", config)]).items():
        con.register(f"__o_{name}", table)
        con.execute(f'create or replace table cfg."{name}" as select * from "__o_{name}"')
    con.execute(
        "create or replace table work.versions as select v.instance_id, v.version_id, v.effective_from, "
        "timezone(i.timezone, v.effective_from::timestamp) as from_utc from cfg.versions v "
        "join cfg.instances i using (instance_id)"
    )
    compute(con)
    sql = "select frt_business_seconds from gold.conversation_facts order by conversation_id"
    return [r[0] for r in con.execute(sql).fetchall()]


def reference(a: datetime, b: datetime, tz: str, bh: BusinessHours) -> float:
    return business_seconds_reference(a, b, tz, bh)


SP = "America/Sao_Paulo"


def utc(*args: int) -> datetime:
    return datetime(*args, tzinfo=UTC)


def test_default_schedule_nights_and_weekends(tmp_path: Path) -> None:
    # Fri 2026-03-06 17:00 local (20:00Z) → Mon 2026-03-09 09:00 local (12:00Z): 1 h Friday + 1 h Monday.
    # Wed 19:00 → Thu 07:00 local: entirely outside business hours.
    # Mon 10:00 → Mon 10:20: 20 minutes.
    got = run_frt(
        tmp_path,
        [
            (utc(2026, 3, 6, 20), utc(2026, 3, 9, 12)),
            (utc(2026, 3, 4, 22), utc(2026, 3, 5, 10)),
            (utc(2026, 3, 9, 13), utc(2026, 3, 9, 13, 20)),
        ],
        {},
    )
    assert got == [7200.0, 0.0, 1200.0]


def test_holidays_are_closed(tmp_path: Path) -> None:
    bh = {"weekly": {"mon": [["08:00", "18:00"]], "tue": [["08:00", "18:00"]]}, "holidays": ["2026-03-10"]}
    # Mon 2026-03-09 17:00 local → Wed 2026-03-11 09:00 local: Monday 1 h, Tuesday holiday, Wednesday closed.
    got = run_frt(tmp_path, [(utc(2026, 3, 9, 20), utc(2026, 3, 11, 12))], {"business_hours": bh})
    assert got == [3600.0]


def test_dst_spring_forward_day_is_23_hours(tmp_path: Path) -> None:
    # New York springs forward on Sunday 2026-03-08: a 00:00–24:00 schedule has 23 business hours that day.
    bh = {"weekly": {d: [["00:00", "24:00"]] for d in ("sat", "sun", "mon")}}
    ny = ZoneInfo("America/New_York")
    a = datetime(2026, 3, 8, 0, 0, tzinfo=ny).astimezone(UTC)
    b = datetime(2026, 3, 9, 0, 0, tzinfo=ny).astimezone(UTC)
    c = datetime(2026, 3, 8, 12, 0, tzinfo=ny).astimezone(UTC)
    got = run_frt(tmp_path, [(a, b), (c, b)], {"timezone": "America/New_York", "business_hours": bh})
    assert got == [23 * 3600.0, 12 * 3600.0]


def test_dst_fall_back_day_is_25_hours(tmp_path: Path) -> None:
    bh = {"weekly": {d: [["00:00", "24:00"]] for d in ("sat", "sun", "mon")}}
    ny = ZoneInfo("America/New_York")
    a = datetime(2026, 11, 1, 0, 0, tzinfo=ny).astimezone(UTC)
    b = datetime(2026, 11, 2, 0, 0, tzinfo=ny).astimezone(UTC)
    assert run_frt(tmp_path, [(a, b)], {"timezone": "America/New_York", "business_hours": bh}) == [25 * 3600.0]


def test_schedule_changes_apply_from_their_effective_date(tmp_path: Path) -> None:
    bh = {
        "versions": [
            {"effective_from": "2020-01-01", "weekly": {d: [["08:00", "18:00"]] for d in ("mon", "tue", "wed")}},
            {"effective_from": "2026-03-10", "weekly": {d: [["08:00", "10:00"]] for d in ("mon", "tue", "wed")}},
        ]
    }
    got = run_frt(
        tmp_path,
        [
            # Started Mon 2026-03-09 (old schedule), ends Tue 12:00 local: 10 h Monday... from 08:00 + 4 h Tuesday.
            (utc(2026, 3, 9, 11), utc(2026, 3, 10, 15)),
            # Started Tue 2026-03-10 (new schedule 08–10): 2 h.
            (utc(2026, 3, 10, 11), utc(2026, 3, 10, 15)),
        ],
        {"business_hours": bh},
    )
    assert got == [14 * 3600.0, 2 * 3600.0]


def test_invalid_schedules_are_rejected() -> None:
    with pytest.raises(ValueError, match="before closing"):
        BusinessHours.model_validate({"weekly": {"mon": [["18:00", "08:00"]]}})
    with pytest.raises(ValueError, match="overlap"):
        BusinessHours.model_validate({"weekly": {"mon": [["08:00", "12:00"], ["11:00", "13:00"]]}})
    with pytest.raises(ValueError, match="weekday"):
        BusinessHours.model_validate({"weekly": {"monday": [["08:00", "12:00"]]}})
    with pytest.raises(ValueError, match="time zone"):
        InstanceConfig(timezone="Mars/Olympus")


ZONES = ["America/Sao_Paulo", "America/New_York", "Europe/Lisbon", "Australia/Sydney"]
SCHEDULE = {
    "weekly": {
        "mon": [["07:30", "12:00"], ["13:00", "18:00"]],
        "tue": [["08:00", "18:00"]],
        "wed": [["00:00", "24:00"]],
        "thu": [["08:00", "18:00"]],
        "fri": [["08:00", "16:00"], ["22:00", "24:00"]],
        "sun": [["10:00", "14:00"]],
    },
    "holidays": ["2026-03-10", "2026-04-03", "2026-10-26", "2026-11-02"],
}


@settings(max_examples=12, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(
    zone=st.sampled_from(ZONES),
    spans=st.lists(st.tuples(st.integers(0, 300 * 86400), st.integers(0, 20 * 86400)), min_size=1, max_size=40),
)
def test_business_seconds_match_reference(
    tmp_path_factory: pytest.TempPathFactory, zone: str, spans: list[tuple[int, int]]
) -> None:
    base = utc(2026, 2, 1)  # the range crosses both hemispheres' DST changes
    intervals = [(base + timedelta(seconds=s), base + timedelta(seconds=s + d)) for s, d in spans]
    got = run_frt(tmp_path_factory.mktemp("bh"), intervals, {"timezone": zone, "business_hours": SCHEDULE})
    bh = BusinessHours.model_validate(SCHEDULE)
    want = [reference(a, b, zone, bh) for a, b in intervals]
    assert got == pytest.approx(want, abs=1e-6)


def test_reference_sanity() -> None:
    # The reference itself: a full default Monday is 10 h.
    bh = BusinessHours()
    assert reference(utc(2026, 3, 9, 3), utc(2026, 3, 10, 3), SP, bh) == 36000.0
    assert date(2026, 3, 9).isoweekday() == 1
