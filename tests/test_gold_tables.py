"""Each gold table against an independent Python computation over a synthetic silver lake, with the
instance's SLA policy read from the ops store; plus idempotent rebuilds and the clock rules
(automated messages never stop a clock, unanswered waits, pending vs breached)."""

from __future__ import annotations

import statistics
from collections import Counter, defaultdict
from collections.abc import Iterator
from datetime import UTC, date, datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

import pytest
import sqlalchemy as sa

from gold.runner import GOLD_TABLES, build_gold
from storage.duck import connect
from storage.instances import add_instance
from storage.lake import Lake
from storage.tables import instances
from tests.support.gold_fixtures import synthetic, write_silver

START = datetime(2026, 3, 2, 3, tzinfo=UTC)
AS_OF = datetime(2026, 3, 13, 15, tzinfo=UTC)
TZ = {"inst-sp": "America/Sao_Paulo", "inst-ny": "America/New_York"}  # NY crosses DST on 2026-03-08
POLICY = {
    "first_response": {"minutes": 20, "basis": "calendar"},
    "next_reply": {"minutes": 30, "basis": "calendar"},
    "resolution": {"minutes": 600, "basis": "calendar"},
    "teams": {"inst-sp-team1": {"first_response": {"minutes": 5, "basis": "calendar"}}},
}


@pytest.fixture
def world(lake: Lake, engine: sa.Engine, monkeypatch: pytest.MonkeyPatch, tmp_path: Any) -> Iterator[dict]:
    monkeypatch.setenv("BEAZAP_SECRET_KEY_FILE", str(tmp_path / "k"))
    for inst, tz in TZ.items():
        add_instance(engine, inst, "acct", token=f"t-{inst}", timezone=tz)
        with engine.begin() as conn:
            conn.execute(sa.update(instances).where(instances.c.id == inst).values(sla_policy=POLICY))
    rows = synthetic(lake, instances=list(TZ), start=START, days=10, per_day=12, as_of=AS_OF, seed=11)
    stats = build_gold(lake, engine=engine, as_of=AS_OF)
    con = connect(lake)
    yield {"rows": rows, "con": con, "stats": stats, "lake": lake, "engine": engine}
    con.close()


def local(ts: datetime, inst: str) -> datetime:
    return ts.astimezone(ZoneInfo(TZ[inst]))


def q(con: Any, sql: str) -> list[tuple]:
    return con.execute(sql).fetchall()


def test_every_table_written(world: dict) -> None:
    assert set(world["stats"]) == set(GOLD_TABLES)
    assert all(s["rows"] > 0 for s in world["stats"].values())


def test_daily_and_hourly_volume(world: dict) -> None:
    want_day: Counter = Counter()
    want_hour: Counter = Counter()
    for m in world["rows"]["messages"]:
        lt = local(m["event_at"], m["instance_id"])
        want_day[(m["instance_id"], lt.date(), m["direction"], m["kind"])] += 1
        want_hour[(m["instance_id"], lt.date(), lt.hour, m["direction"])] += 1
    got_day = {
        (r[0], r[1], r[2], r[3]): r[4]
        for r in q(
            world["con"], "select instance_id, day, direction, kind, sum(messages) from gold.daily_volume group by all"
        )
    }
    got_hour = {
        (r[0], r[1], r[2], r[3]): r[4]
        for r in q(
            world["con"], "select instance_id, day, hour, direction, sum(messages) from gold.hourly_volume group by all"
        )
    }
    assert got_day == dict(want_day)
    assert got_hour == dict(want_hour)
    automated = sum(1 for m in world["rows"]["messages"] if m["automated"])
    assert q(world["con"], "select sum(automated_messages) from gold.daily_volume")[0][0] == automated


def python_waits(rows: dict) -> dict[str, list[tuple[str, float | None]]]:
    """Reply waits per conversation: (status, seconds) — the docs/metrics.md rule written plainly."""
    convs = {c["conversation_id"]: c for c in rows["conversations"]}
    by_conv: dict[str, list[dict]] = defaultdict(list)
    for m in rows["messages"]:
        by_conv[m["conversation_id"]].append(m)
    out: dict[str, list[tuple[str, float | None]]] = {}
    for cid, msgs in by_conv.items():
        msgs.sort(key=lambda m: (m["event_at"], m["direction"] == "outbound", m["message_id"]))
        waits: list[tuple[str, float | None]] = []
        pending: datetime | None = None
        answered_first = False
        for m in msgs:
            human = m["direction"] == "outbound" and not m["automated"]
            if m["direction"] == "inbound" and pending is None:
                pending = m["event_at"]
            elif human:
                if pending is not None and answered_first:
                    waits.append(("answered", (m["event_at"] - pending).total_seconds()))
                pending = None
                answered_first = True
        if pending is not None and answered_first:
            waits.append(("running" if convs[cid]["status"] == "open" else "unanswered", None))
        out[cid] = waits
    return out


def test_reply_waits(world: dict) -> None:
    want = python_waits(world["rows"])
    got: dict[str, list[tuple[str, float | None]]] = defaultdict(list)
    for cid, status, seconds in q(
        world["con"],
        "select conversation_id, wait_status, reply_seconds from gold.reply_waits order by conversation_id, wait_index",
    ):
        got[cid].append((status, seconds))
    assert {k: v for k, v in want.items() if v} == dict(got)
    # SLA per wait: 30 min calendar target.
    for status, seconds, outcome in q(
        world["con"], "select wait_status, reply_seconds, sla_outcome from gold.reply_waits"
    ):
        if status == "answered":
            assert outcome == ("met" if seconds <= 1800 else "breached")


def test_conversation_facts_clocks_and_sla(world: dict) -> None:
    got = {
        r[0]: r[1:]
        for r in q(
            world["con"],
            "select conversation_id, frt_seconds, frt_sla, frt_target_seconds, resolution_seconds, resolution_sla, "
            "handling_seconds, opened_day, team_id from gold.conversation_facts",
        )
    }
    assert len(got) == len(world["rows"]["conversations"])
    for c in world["rows"]["conversations"]:
        frt, frt_sla, target, res, res_sla, handling, day, team = got[c["conversation_id"]]
        assert day == local(c["opened_at"], c["instance_id"]).date()
        assert team == c["team_id"]
        want_target = 300.0 if c["team_id"] == "inst-sp-team1" else 1200.0
        assert target == want_target
        if c["first_response_at"]:
            want = (c["first_response_at"] - c["opened_at"]).total_seconds()
            assert frt == want
            assert frt_sla == ("met" if want <= want_target else "breached")
        else:
            assert frt is None
            end = c["expired_at"] or c["resolved_at"] or AS_OF
            elapsed = (end - c["opened_at"]).total_seconds()
            if elapsed > want_target:
                assert frt_sla == "breached"
            else:
                assert frt_sla == (None if c["status"] != "open" else "pending")
        if c["resolved_at"]:
            want_res = (c["resolved_at"] - c["opened_at"]).total_seconds()
            assert res == want_res
            assert res_sla == ("met" if want_res <= 36000 else "breached")
            assert handling == (c["resolved_at"] - c["first_assigned_at"]).total_seconds()
        else:
            assert res is None and handling is None
            if c["status"] == "expired":
                assert res_sla is None
            else:
                assert res_sla == ("breached" if (AS_OF - c["opened_at"]).total_seconds() > 36000 else "pending")


def test_daily_conversations_and_backlog(world: dict) -> None:
    con = world["con"]
    got = {
        (r[0], r[1]): r[2:]
        for r in q(
            con,
            "select instance_id, day, sum(opened), sum(resolved), sum(expired), sum(backlog) "
            "from gold.daily_conversations group by all",
        )
    }
    convs = world["rows"]["conversations"]
    for inst in TZ:
        zone = ZoneInfo(TZ[inst])
        first = min(local(c["opened_at"], inst).date() for c in convs if c["instance_id"] == inst)
        day = first
        while day <= local(AS_OF, inst).date():
            end_of_day = datetime.combine(day + timedelta(days=1), datetime.min.time(), zone)
            mine = [c for c in convs if c["instance_id"] == inst]
            opened = sum(1 for c in mine if local(c["opened_at"], inst).date() == day)
            resolved = sum(1 for c in mine if c["resolved_at"] and local(c["resolved_at"], inst).date() == day)
            expired = sum(1 for c in mine if c["expired_at"] and local(c["expired_at"], inst).date() == day)
            backlog = sum(
                1
                for c in mine
                if c["opened_at"] < end_of_day
                and not ((c["resolved_at"] or c["expired_at"] or end_of_day) < end_of_day)
            )
            assert got.get((inst, day), (0, 0, 0, 0)) == (opened, resolved, expired, backlog), (inst, day)
            day += timedelta(days=1)


def test_sla_daily_stats(world: dict) -> None:
    rows = q(
        world["con"],
        "select instance_id, day, count, mean_seconds, median_seconds, p90_seconds, sla_met, sla_breached, "
        "achievement_pct, bucket_lt_1m + bucket_1_5m + bucket_5_15m + bucket_15_30m + bucket_30_60m + bucket_1_4h "
        "+ bucket_4_24h + bucket_gt_24h from gold.sla_daily where team_id = '*' and attendant_id = '*' "
        "and clock = 'first_response' and basis = 'calendar'",
    )
    assert rows
    for inst, day, count, mean, median, p90, met, breached, pct, buckets in rows:
        convs = [
            c
            for c in world["rows"]["conversations"]
            if c["instance_id"] == inst and local(c["opened_at"], inst).date() == day
        ]
        values = [(c["first_response_at"] - c["opened_at"]).total_seconds() for c in convs if c["first_response_at"]]
        assert count == len(values) == buckets
        if values:
            assert mean == pytest.approx(statistics.fmean(values))
            assert median == pytest.approx(statistics.median(values))
            want_p90 = statistics.quantiles(values, n=10, method="inclusive")[8] if len(values) > 1 else values[0]
            assert p90 == pytest.approx(want_p90)
        if met + breached:
            assert pct == pytest.approx(100.0 * met / (met + breached))


def test_attendant_and_team_daily(world: dict) -> None:
    con = world["con"]
    total_human = sum(1 for m in world["rows"]["messages"] if m["direction"] == "outbound" and not m["automated"])
    assert q(con, "select sum(messages_sent) from gold.attendant_daily")[0][0] == total_human
    assert q(con, "select sum(messages_sent) from gold.team_daily")[0][0] == total_human
    explicit = Counter(
        (m["sender_attendant_id"], local(m["event_at"], m["instance_id"]).date())
        for m in world["rows"]["messages"]
        if m["sender_attendant_id"]
    )
    got = {(r[0], r[1]): r[2] for r in q(con, "select attendant_id, day, messages_sent from gold.attendant_daily")}
    for key, n in explicit.items():
        assert got[key] >= n  # plus app-sent messages attributed to the assignee at that moment
    frt = Counter(
        (c["first_responder_id"], local(c["opened_at"], c["instance_id"]).date())
        for c in world["rows"]["conversations"]
        if c["first_response_at"]
    )
    got_frt = {
        (r[0], r[1]): r[2]
        for r in q(con, "select attendant_id, day, first_responses from gold.attendant_daily where first_responses > 0")
    }
    assert got_frt == dict(frt)
    resolved = Counter(
        (c["team_id"], local(c["resolved_at"], c["instance_id"]).date())
        for c in world["rows"]["conversations"]
        if c["resolved_at"]
    )
    got_res = {
        (r[0], r[1]): r[2]
        for r in q(
            con, "select team_id, day, conversations_resolved from gold.team_daily where conversations_resolved > 0"
        )
    }
    assert got_res == dict(resolved)


def test_calls_and_heatmap(world: dict) -> None:
    con = world["con"]
    calls = world["rows"]["calls"]
    got = dict(q(con, "select media, sum(offered) from gold.calls_daily group by 1"))
    assert got.get("video", 0) == sum(1 for c in calls if c["is_video"])
    assert got.get("voice", 0) == sum(1 for c in calls if not c["is_video"])
    assert q(con, "select sum(missed) from gold.calls_daily")[0][0] == sum(1 for c in calls if c["outcome"] == "missed")
    want = Counter(
        (local(m["event_at"], m["instance_id"]).isoweekday(), local(m["event_at"], m["instance_id"]).hour)
        for m in world["rows"]["messages"]
        if m["direction"] == "inbound"
    )
    got_heat = {
        (r[0], r[1]): r[2]
        for r in q(
            con,
            "select weekday, hour, sum(inbound_messages) from gold.heatmap "
            "group by all having sum(inbound_messages) > 0",
        )
    }
    assert got_heat == dict(want)


def test_rebuild_is_idempotent(world: dict) -> None:
    lake, engine = world["lake"], world["engine"]
    before = {t: connect(lake).execute(f"select * from gold.{t} order by all").fetchall() for t in GOLD_TABLES}
    build_gold(lake, engine=engine, as_of=AS_OF)
    after = {t: connect(lake).execute(f"select * from gold.{t} order by all").fetchall() for t in GOLD_TABLES}
    assert before == after


def test_automated_messages_never_stop_a_clock(lake: Lake) -> None:
    t0 = datetime(2026, 3, 4, 13, tzinfo=UTC)  # Wednesday 10:00 in São Paulo
    base = {"instance_id": "i", "chat_type": "direct", "contact_key": "+1", "kind": "text", "conversation_id": "c"}
    msgs = [
        {**base, "message_id": "1", "direction": "inbound", "event_at": t0},
        {
            **base,
            "message_id": "2",
            "direction": "outbound",
            "event_at": t0 + timedelta(minutes=2),
            "sender_attendant_id": "a",
        },
        {**base, "message_id": "3", "direction": "inbound", "event_at": t0 + timedelta(minutes=10)},
        {
            **base,
            "message_id": "4",
            "direction": "outbound",
            "event_at": t0 + timedelta(minutes=10, seconds=5),
            "automated": True,
        },
        {**base, "message_id": "5", "direction": "inbound", "event_at": t0 + timedelta(minutes=12)},
        {
            **base,
            "message_id": "6",
            "direction": "outbound",
            "event_at": t0 + timedelta(minutes=40),
            "sender_attendant_id": "a",
        },
        {**base, "message_id": "7", "direction": "inbound", "event_at": t0 + timedelta(minutes=50)},
    ]
    conv = {
        "conversation_id": "c",
        "instance_id": "i",
        "contact_key": "+1",
        "origin": "inbound",
        "opened_at": t0,
        "first_response_at": t0 + timedelta(minutes=2),
        "first_responder_id": "a",
        "status": "resolved",
        "resolved_at": t0 + timedelta(hours=1),
        "closed_at": t0 + timedelta(hours=1),
        "assignee_id": "a",
    }
    write_silver(lake, "messages", msgs)
    write_silver(lake, "conversations", [conv])
    build_gold(lake, as_of=t0 + timedelta(days=1))
    con = connect(lake)
    waits = q(
        con, "select wait_status, reply_seconds, responder_id, sla_outcome from gold.reply_waits order by wait_index"
    )
    # The automated reply at +10:05 did not answer the +10:00 question: the human one at +40:00 did.
    assert waits == [("answered", 1800.0, "a", "met"), ("unanswered", None, None, None)]
    facts = q(con, "select reply_waits, replies, unanswered_waits, next_reply_sla from gold.conversation_facts")
    assert facts == [(2, 1, 1, "met")]


def test_pending_until_past_target(lake: Lake) -> None:
    t0 = datetime(2026, 3, 4, 13, tzinfo=UTC)
    conv = {
        "conversation_id": "c",
        "instance_id": "i",
        "contact_key": "+1",
        "origin": "inbound",
        "opened_at": t0,
        "status": "open",
    }
    write_silver(lake, "conversations", [conv])
    build_gold(lake, as_of=t0 + timedelta(minutes=10))  # default FRT target: 15 business minutes
    assert q(connect(lake), "select frt_sla from gold.conversation_facts") == [("pending",)]
    build_gold(lake, as_of=t0 + timedelta(minutes=16))
    assert q(connect(lake), "select frt_sla, frt_overdue_seconds from gold.conversation_facts") == [("breached", 60.0)]
    assert date(2026, 3, 4).isoweekday() == 3
