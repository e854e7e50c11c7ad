"""Exactness end to end: simulate → bronze → silver → gold equals figures computed from the
simulator's ground truth (an independent Python implementation of docs/metrics.md)."""

from __future__ import annotations

import statistics
from collections import Counter, defaultdict
from datetime import date
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import pytest

from gold.config import BusinessHours
from tests.support.gold_fixtures import business_seconds_reference


@pytest.fixture(scope="module")
def built(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    pytest.importorskip("silver.pipeline")
    import os

    from beazap.simulator import SimulationConfig, register_instances, simulate, write_bronze
    from core.settings import Settings
    from gold.runner import build_gold
    from silver.pipeline import build_silver
    from storage import migrate
    from storage.db import make_engine
    from storage.duck import connect
    from storage.lake import Lake

    root: Path = tmp_path_factory.mktemp("gold-truth")
    os.environ.setdefault("BEAZAP_SECRET_KEY_FILE", str(root / "secret.key"))
    settings = Settings(lake_uri=str(root / "lake"), database_url=f"sqlite:///{root / 'ops.db'}")
    lake = Lake.from_settings(settings)
    engine = make_engine(settings.database_url)
    migrate.upgrade(engine)
    sim = simulate(SimulationConfig(seed=23, instances=3, days=5, conversations_per_day=30, start=date(2026, 3, 5)))
    register_instances(engine, sim)
    write_bronze(lake, sim)
    stats = build_silver(lake, settings=settings)
    as_of = sim.ground_truth.as_of
    assert stats["_run"]["as_of"] == as_of  # a replay's as-of is the latest instant its bronze holds
    build_gold(lake, engine=engine, settings=settings)  # gold measures running clocks to silver's as-of
    con = connect(lake)
    yield {
        "sim": sim,
        "truth": sim.ground_truth,
        "con": con,
        "as_of": as_of,
        "tz": {i.id: i.timezone for i in sim.instances},
    }
    con.close()
    engine.dispose()


def q(con: Any, sql: str) -> list[tuple]:
    return con.execute(sql).fetchall()


def test_daily_volume_equals_truth(built: dict) -> None:
    got = {
        (r[0], r[1].isoformat(), r[2], r[3], r[4]): r[5]
        for r in q(
            built["con"],
            "select instance_id, day, direction, kind, chat_type, sum(messages) from gold.daily_volume group by all",
        )
    }
    want = {
        (d["instance_id"], d["day"], d["direction"], d["kind"], d["chat_type"]): d["messages"]
        for d in built["truth"].daily_volume
    }
    assert got == want


def test_hourly_volume_equals_truth(built: dict) -> None:
    got = {
        (r[0], r[1].isoformat(), r[2], r[3], r[4]): r[5]
        for r in q(
            built["con"],
            "select instance_id, day, hour, direction, chat_type, sum(messages) from gold.hourly_volume group by all",
        )
    }
    want = {
        (d["instance_id"], d["day"], d["hour"], d["direction"], d["chat_type"]): d["messages"]
        for d in built["truth"].hourly_volume
    }
    assert got == want


KINDS = ("opened", "resolved", "expired", "abandoned", "reopened")


def test_daily_conversations_equal_truth(built: dict) -> None:
    got = {
        (r[0], r[1].isoformat()): dict(zip(KINDS, r[2:], strict=True))
        for r in q(
            built["con"],
            "select instance_id, day, sum(opened), sum(resolved), sum(expired), sum(abandoned), sum(reopened) "
            "from gold.daily_conversations group by all "
            "having sum(opened) + sum(resolved) + sum(expired) + sum(abandoned) + sum(reopened) > 0",
        )
    }
    want = {(d["instance_id"], d["day"]): {k: d[k] for k in KINDS} for d in built["truth"].daily_conversations}
    assert any(v["abandoned"] for v in want.values())  # the simulation has customers nobody answered
    assert got == want


def test_conversations_by_origin_equal_truth(built: dict) -> None:
    got = {
        (r[0], r[1].isoformat()): (r[2], r[3])
        for r in q(
            built["con"],
            "select instance_id, day, sum(opened_inbound), sum(opened_outbound) from gold.daily_conversations "
            "group by all having sum(opened) > 0",
        )
    }
    want = {
        (d["instance_id"], d["day"]): (d["opened_inbound"], d["opened_outbound"])
        for d in built["truth"].daily_conversations
        if d["opened"]
    }
    assert any(v[0] for v in want.values()) and any(v[1] for v in want.values())  # both origins happen
    assert got == want


ACTIVITY = ("edited", "revoked", "reactions", "image", "audio", "video", "document", "sticker", "location", "contact")


def test_message_activity_equals_truth(built: dict) -> None:
    """Edited, revoked, reactions and media by type per instance × day (gold.daily_volume)."""
    kinds = ", ".join(f"sum(messages) filter (where kind = '{k}')" for k in ACTIVITY[3:])
    got = {
        (r[0], r[1].isoformat()): tuple(int(v or 0) for v in r[2:])
        for r in q(
            built["con"],
            f"select instance_id, day, sum(edited_messages), sum(revoked_messages), sum(reactions), {kinds} "
            "from gold.daily_volume group by all",
        )
    }
    want = {(d["instance_id"], d["day"]): tuple(d.get(k, 0) for k in ACTIVITY) for d in built["truth"].daily_activity}
    totals = [sum(v[i] for v in want.values()) for i in range(len(ACTIVITY))]
    assert all(totals[:5]), dict(zip(ACTIVITY, totals, strict=True))  # the simulation has each of these
    assert got == want


def test_contacts_new_and_returning_equal_truth(built: dict) -> None:
    got = {
        (r[0], r[1].isoformat()): {"contacts": r[2], "new": r[3], "returning": r[2] - r[3]}
        for r in q(
            built["con"],
            "select instance_id, day, count(*), count(*) filter (where new) from gold.contact_days group by all",
        )
    }
    want = {
        (d["instance_id"], d["day"]): {k: d[k] for k in ("contacts", "new", "returning")}
        for d in built["truth"].daily_contacts
    }
    assert sum(v["returning"] for v in want.values()) and sum(v["new"] for v in want.values())
    assert got == want


def test_conversation_clocks_and_sla_equal_truth(built: dict) -> None:
    rows = q(
        built["con"],
        "select conversation_id, status, frt_seconds, frt_business_seconds, frt_sla, resolution_seconds, "
        "handling_seconds, first_responder_id, assignee_id, is_reopen, reopened, opened_day "
        "from gold.conversation_facts",
    )
    got = {r[0]: r[1:] for r in rows}
    truth = built["truth"].conversations
    assert set(got) == {c.conversation_id for c in truth}
    bh = BusinessHours()  # the simulator registers instances without a schedule: the default applies
    mismatches: Counter[str] = Counter()
    for c in truth:
        status, frt, frt_b, frt_sla, res, handling, responder, assignee, is_reopen, reopened, day = got[
            c.conversation_id
        ]
        tz = built["tz"][c.instance_id]
        want_frt = (c.first_response_at - c.opened_at).total_seconds() if c.first_response_at else None
        checks = {
            "status": status == c.status,
            "frt": frt == want_frt,
            "resolution": res == ((c.resolved_at - c.opened_at).total_seconds() if c.resolved_at else None),
            "handling": handling
            == (
                (c.resolved_at - c.first_assigned_at).total_seconds() if c.resolved_at and c.first_assigned_at else None
            ),
            "responder": responder == c.first_responder_id,
            "assignee": assignee == c.assignee_id,
            "reopen": (is_reopen, reopened) == (c.is_reopen, c.reopened),
            "day": day == c.opened_at.astimezone(ZoneInfo(tz)).date(),
        }
        if c.origin == "inbound":
            end = c.first_response_at or c.resolved_at or c.expired_at or built["as_of"]
            elapsed = business_seconds_reference(c.opened_at, max(end, c.opened_at), tz, bh)
            if c.first_response_at:
                checks["frt_business"] = frt_b == pytest.approx(elapsed)
                want_sla = "met" if elapsed <= 900 else "breached"
            elif elapsed > 900:
                want_sla = "breached"
            else:
                want_sla = "pending" if c.status == "open" else None
            checks["frt_sla"] = frt_sla == want_sla
        for name, ok in checks.items():
            if not ok:
                mismatches[name] += 1
    assert not mismatches


def truth_waits(truth: Any) -> dict[str, list[tuple[str, float | None, str | None]]]:
    status = {c.conversation_id: (c.status, c.origin) for c in truth.conversations}
    by_conv: dict[str, list[Any]] = defaultdict(list)
    for m in truth.messages:
        if m.conversation_id and m.chat_type == "direct":
            by_conv[m.conversation_id].append(m)
    out: dict[str, list[tuple[str, float | None, str | None]]] = {}
    for cid, msgs in by_conv.items():
        msgs.sort(key=lambda m: (m.event_at, m.direction == "outbound", m.message_id))
        conv_status, origin = status[cid]
        waits = []
        pending = None
        humans = 0
        for m in msgs:
            human = m.direction == "outbound" and not m.automated
            if m.direction == "inbound" and pending is None:
                pending = m.event_at
            elif human:
                if pending is not None and not (origin == "inbound" and humans == 0):
                    waits.append(("answered", (m.event_at - pending).total_seconds(), m.attendant_id))
                pending = None
                humans += 1
        if pending is not None and not (origin == "inbound" and humans == 0):
            waits.append(("running" if conv_status == "open" else "unanswered", None, None))
        if waits:
            out[cid] = waits
    return out


def test_reply_waits_equal_truth(built: dict) -> None:
    got: dict[str, list[tuple[str, float | None, str | None]]] = defaultdict(list)
    for cid, st, seconds, responder in q(
        built["con"],
        "select conversation_id, wait_status, reply_seconds, responder_id from gold.reply_waits "
        "order by conversation_id, wait_index",
    ):
        got[cid].append((st, seconds, responder))
    want = truth_waits(built["truth"])
    assert want, "the simulation should produce reply waits"
    assert dict(got) == want


def test_attribution_of_messages_equals_truth(built: dict) -> None:
    truth = built["truth"]
    tz = built["tz"]
    human = [m for m in truth.messages if m.direction == "outbound" and not m.automated]
    want_att = Counter(
        (m.instance_id, m.attendant_id, m.event_at.astimezone(ZoneInfo(tz[m.instance_id])).date()) for m in human
    )
    got_att = {
        (r[0], r[1], r[2]): r[3]
        for r in q(
            built["con"],
            "select instance_id, attendant_id, day, messages_sent from gold.attendant_daily where messages_sent > 0",
        )
    }
    assert got_att == dict(want_att)
    want_team = Counter(
        (m.instance_id, m.team_id or "none", m.event_at.astimezone(ZoneInfo(tz[m.instance_id])).date()) for m in human
    )
    got_team = {
        (r[0], r[1], r[2]): r[3]
        for r in q(
            built["con"],
            "select instance_id, team_id, day, sum(messages) from gold.daily_volume "
            "where attendant_id is not null group by all",
        )
    }
    assert got_team == dict(want_team)


def test_calls_and_heatmap_equal_truth(built: dict) -> None:
    truth, tz = built["truth"], built["tz"]
    want = Counter()
    for c in truth.calls:
        day = c.offered_at.astimezone(ZoneInfo(tz[c.instance_id])).date()
        want[(c.instance_id, day, "video" if c.is_video else "voice", c.outcome)] += 1
    got: Counter = Counter()
    for inst, day, media, accepted, rejected, missed in q(
        built["con"], "select instance_id, day, media, accepted, rejected, missed from gold.calls_daily"
    ):
        for outcome, n in (("accepted", accepted), ("rejected", rejected), ("missed", missed)):
            if n:
                got[(inst, day, media, outcome)] += n
    assert got == want
    heat = Counter()
    for m in truth.messages:
        if m.direction == "inbound":
            lt = m.event_at.astimezone(ZoneInfo(tz[m.instance_id]))
            heat[(m.instance_id, lt.isoweekday(), lt.hour)] += 1
    got_heat = {
        (r[0], r[1], r[2]): r[3]
        for r in q(
            built["con"],
            "select instance_id, weekday, hour, sum(inbound_messages) from gold.heatmap "
            "group by all having sum(inbound_messages) > 0",
        )
    }
    assert got_heat == dict(heat)


def test_sla_daily_frt_stats_equal_truth(built: dict) -> None:
    truth, tz = built["truth"], built["tz"]
    per_day: dict[tuple[str, date], list[float]] = defaultdict(list)
    for c in truth.conversations:
        if c.origin == "inbound" and c.first_response_at:
            day = c.opened_at.astimezone(ZoneInfo(tz[c.instance_id])).date()
            per_day[(c.instance_id, day)].append((c.first_response_at - c.opened_at).total_seconds())
    rows = q(
        built["con"],
        "select instance_id, day, count, median_seconds, p90_seconds from gold.sla_daily "
        "where team_id = '*' and attendant_id = '*' and clock = 'first_response' and basis = 'calendar' and count > 0",
    )
    assert {(r[0], r[1]) for r in rows} == set(per_day)
    for inst, day, count, median, p90 in rows:
        values = per_day[(inst, day)]
        assert count == len(values)
        assert median == pytest.approx(statistics.median(values))
        want_p90 = statistics.quantiles(values, n=10, method="inclusive")[8] if len(values) > 1 else values[0]
        assert p90 == pytest.approx(want_p90)
