"""Sessionization edge cases (docs/metrics.md → Conversations): expiry, reopen window, origin, groups, ties,
operational actions (assign/resolve/reopen/message_sent), waiting / abandoned conversations and the as-of
"now" rule."""

from __future__ import annotations

import json
from datetime import timedelta

import pytest
from test_silver_scenarios import INSTANCE, T0, hours, message, minutes, op

from core.identity import conversation_id
from core.settings import get_settings
from silver.pipeline import build_silver
from storage.duck import connect
from tests.support.bronze_rows import append_ops, append_webhooks, ops_rows, webhook_rows

A = "5511987654321@s.whatsapp.net"
A_KEY = "+5511987654321"
B = "5521976543210@s.whatsapp.net"
B_KEY = "+5521976543210"
GROUP = "120363041234567890@g.us"

_counter = iter(range(10**9))


def land(lake, *bodies):
    rows = [(f"r{next(_counter):08d}", T0, json.dumps(b)) for b in bodies]
    append_webhooks(lake, webhook_rows(rows))


def land_ops(lake, *actions):
    append_ops(lake, ops_rows(actions))


def convs(lake, contact=None):
    con = connect(lake)
    where = f"where contact_key = '{contact}'" if contact else ""
    rel = con.sql(f"select * from silver.conversations {where} order by opened_at")
    return [dict(zip(rel.columns, r, strict=True)) for r in rel.fetchall()]


def test_inactivity_expiry_and_exact_boundary(lake):
    land(
        lake,
        message("m1", A, T0),
        message("m2", A, T0 + minutes(10), from_me=True),
        message("m3", A, T0 + minutes(10) + hours(24)),  # exactly the timeout: same conversation
        message("m4", A, T0 + minutes(10) + hours(48) + timedelta(seconds=1)),  # past it: new one
    )
    build_silver(lake)
    c1, c2 = convs(lake)
    assert c1["conversation_id"] == conversation_id(INSTANCE, A_KEY, "m1")
    assert c1["status"] == "expired" and c1["inbound_count"] == 2 and c1["outbound_count"] == 1
    assert c1["closed_at"] == T0 + minutes(10) + hours(24)
    assert c1["expired_at"] == c1["closed_at"] + hours(24) and c1["resolved_at"] is None
    assert c2["status"] == "open" and c2["previous_conversation_id"] == c1["conversation_id"]
    assert c2["is_reopen"] is False and c1["reopened"] is False


def test_as_of_expires_quiet_conversations_incrementally(lake):
    land(lake, message("a1", A, T0), message("a2", A, T0 + minutes(1), from_me=True), message("b1", B, T0))
    build_silver(lake)
    assert {c["status"] for c in convs(lake)} == {"open"}
    land(lake, message("b2", B, T0 + hours(30)))  # only B talks; the run's as-of moves past A's timeout
    stats = build_silver(lake)
    assert stats["_run"]["as_of"] == T0 + hours(30)
    (a,) = convs(lake, A_KEY)
    assert a["status"] == "expired" and a["closed_at"] == T0 + minutes(1)
    assert a["expired_at"] == T0 + minutes(1) + hours(24)
    # B never had a first response: its conversation waits, whatever the silence
    (b,) = convs(lake, B_KEY)
    assert b["status"] == "open" and b["inbound_count"] == 2 and b["closed_at"] is None
    # a later as-of past the abandonment limit closes it, with or without traffic
    build_silver(lake, as_of=T0 + hours(24 * 7) + timedelta(seconds=1))
    (b,) = convs(lake, B_KEY)
    limit = hours(get_settings().abandon_after_hours)
    assert b["status"] == "abandoned" and b["closed_at"] == b["expired_at"] == T0 + limit


def test_waiting_conversation_absorbs_gaps_until_answered(lake):
    land(
        lake,
        message("w1", A, T0),
        message("w2", A, T0 + hours(30)),  # still waiting: the same conversation
        message("w3", A, T0 + hours(40), from_me=True),  # first response after 40 h
        message("w4", A, T0 + hours(41)),  # thanks…
        message("w5", A, T0 + hours(70)),  # more than 24 h after w4: answered conversations expire
    )
    build_silver(lake)
    c1, c2 = convs(lake)
    assert c1["inbound_count"] == 3 and c1["outbound_count"] == 1 and c1["first_response_at"] == T0 + hours(40)
    assert c1["status"] == "expired" and c1["closed_at"] == T0 + hours(41)
    assert c2["opening_message_id"] == "w5" and c2["status"] == "open"


def test_abandonment_splits_and_late_answer_opens_business_conversation(lake, monkeypatch):
    monkeypatch.setenv("BEAZAP_ABANDON_AFTER_HOURS", "48")
    get_settings.cache_clear()
    land(
        lake,
        message("x1", A, T0),
        message("x2", A, T0 + hours(47)),  # within the limit: same conversation
        message("x3", A, T0 + hours(49)),  # after it: the first was abandoned, a new one waits
        message("x4", A, T0 + hours(98), from_me=True),  # 49 h after x3: answers nothing, opens its own
    )
    build_silver(lake)
    c1, c2, c3 = convs(lake)
    assert c1["status"] == "abandoned" and c1["inbound_count"] == 2 and c1["closed_at"] == T0 + hours(48)
    assert c2["opening_message_id"] == "x3" and c2["status"] == "abandoned" and c2["first_response_at"] is None
    assert c3["origin"] == "outbound" and c3["status"] == "open"


def test_outbound_initiated_has_no_first_response(lake):
    land(
        lake,
        message("o1", A, T0, from_me=True),
        message("i1", A, T0 + minutes(3)),
        message("o2", A, T0 + minutes(4), from_me=True),
    )
    build_silver(lake)
    (c,) = convs(lake)
    assert c["origin"] == "outbound" and c["opening_message_id"] == "o1"
    assert c["first_response_at"] is None and c["first_responder_id"] is None
    assert c["inbound_count"] == 1 and c["outbound_count"] == 2


def test_tie_inbound_before_outbound_same_second(lake):
    land(lake, message("z-out", A, T0, from_me=True), message("a-in", A, T0))
    build_silver(lake)
    (c,) = convs(lake)
    assert c["origin"] == "inbound" and c["opening_message_id"] == "a-in"
    assert c["first_response_at"] == T0 and c["first_response_message_id"] == "z-out"


def test_groups_are_not_conversations(lake):
    land(lake, message("g1", GROUP, T0, participant=B), message("g2", GROUP, T0 + minutes(1), from_me=True))
    build_silver(lake)
    assert convs(lake) == []


def test_resolve_reopen_window_and_links(lake, monkeypatch):
    monkeypatch.setenv("BEAZAP_REOPEN_WINDOW_HOURS", "2")
    get_settings.cache_clear()
    land(
        lake,
        message("c1", A, T0),
        message("c2", A, T0 + minutes(5), from_me=True),
        message("c3", A, T0 + hours(1)),  # 50 min after resolution → reopen
        message("c4", A, T0 + hours(1) + minutes(1), from_me=True),
        message("c5", A, T0 + hours(4)),  # 2h50 after the 2nd resolution → new, not a reopen
    )
    land_ops(
        lake,
        op("x1", "assign", A_KEY, T0 + minutes(1), attendant="att-1", team="team-1"),
        op("x2", "resolve", A_KEY, T0 + minutes(10), actor="att-1"),
        op("x3", "resolve", A_KEY, T0 + hours(1) + minutes(10), actor="att-2"),
    )
    build_silver(lake)
    c1, c2, c3 = convs(lake)
    assert c1["status"] == "resolved" and c1["resolved_at"] == T0 + minutes(10) and c1["resolved_by"] == "att-1"
    assert c1["closed_at"] == c1["resolved_at"] and c1["reopened"] is True
    assert c1["assignee_id"] == "att-1" and c1["team_id"] == "team-1" and c1["first_assigned_at"] == T0 + minutes(1)
    assert c1["first_responder_id"] == "att-1"  # app message attributed to the assignee at that moment
    assert c2["is_reopen"] is True and c2["previous_conversation_id"] == c1["conversation_id"]
    assert c2["status"] == "resolved" and c2["reopened"] is False and c2["assignee_id"] is None
    assert c2["first_responder_id"] == "unattributed"
    assert c3["is_reopen"] is False and c3["status"] == "open"


def test_reopen_action_and_late_resolve_after_expiry(lake):
    land(
        lake,
        message("d1", A, T0),
        message("d2", A, T0 + minutes(20)),
        message("e1", B, T0),
        message("e1r", B, T0 + minutes(1), from_me=True),
        message("e2", B, T0 + hours(80)),
    )
    land_ops(
        lake,
        op("y1", "resolve", A_KEY, T0 + minutes(10)),
        op("y2", "reopen", A_KEY, T0 + minutes(15)),  # undoes the resolve: d2 stays in the same conversation
        op("y3", "resolve", B_KEY, T0 + hours(30)),  # B's answered conversation had already expired: ignored
    )
    build_silver(lake)
    (a,) = convs(lake, A_KEY)
    # never answered: still waiting (open) at the as-of (+80 h), never resolved
    assert a["status"] == "open" and a["inbound_count"] == 2 and a["resolved_at"] is None
    b1, _b2 = convs(lake, B_KEY)
    assert b1["status"] == "expired" and b1["resolved_at"] is None


def test_resolve_after_long_silence_of_a_waiting_conversation_applies(lake):
    """The live store lets an attendant resolve a conversation still waiting for its first response,
    however long it has been silent: silver applies that resolve the same way."""
    land(lake, message("s1", A, T0), message("s2", A, T0 + hours(60)))
    land_ops(
        lake,
        op("z1", "assign", A_KEY, T0 + hours(50), attendant="att-1", team="team-1"),
        op("z2", "resolve", A_KEY, T0 + hours(50) + minutes(1), actor="att-1"),
    )
    build_silver(lake)
    c1, c2 = convs(lake, A_KEY)
    assert c1["status"] == "resolved" and c1["resolved_at"] == T0 + hours(50) + minutes(1)
    assert c1["assignee_id"] == "att-1" and c1["resolved_by"] == "att-1"
    assert c2["opening_message_id"] == "s2" and c2["status"] == "open"


def test_automated_and_attendant_sent_messages(lake):
    land(
        lake,
        message("f1", A, T0),
        message("bot1", A, T0 + minutes(1), from_me=True, event="send.message"),
        message("h1", A, T0 + minutes(7), from_me=True, event="send.message"),
    )
    land_ops(
        lake,
        op(
            "s1", "message_sent", A_KEY, T0 + minutes(1), actor="bot", details={"message_id": "bot1", "automated": True}
        ),
        op(
            "s2",
            "message_sent",
            A_KEY,
            T0 + minutes(7),
            actor="att-9",
            details={"message_id": "h1", "automated": False},
        ),
    )
    build_silver(lake)
    (c,) = convs(lake)
    assert c["first_response_message_id"] == "h1" and c["first_responder_id"] == "att-9"
    assert c["first_response_at"] == T0 + minutes(7)
    con = connect(lake)
    auto = dict(con.sql("select message_id, automated from silver.messages").fetchall())
    assert auto == {"f1": False, "bot1": True, "h1": False}
    sender = con.sql("select sender_attendant_id from silver.messages where message_id = 'h1'").fetchall()
    assert sender == [("att-9",)]


@pytest.mark.parametrize("late_first", [True, False])
def test_late_message_recomputes_only_its_contact(lake, late_first):
    g0 = message("g0", A, T0 + minutes(1), from_me=True)  # answered: the gap expires it
    land(lake, message("g1", A, T0), g0, message("g3", A, T0 + hours(30)), message("k1", B, T0))
    build_silver(lake)
    assert len(convs(lake, A_KEY)) == 2
    b_before = convs(lake, B_KEY)
    # a late message in the gap joins the two conversations into one
    land(lake, message("g2", A, T0 + hours(20)))
    build_silver(lake)
    (a,) = convs(lake, A_KEY)
    assert a["inbound_count"] == 3 and a["opening_message_id"] == "g1"
    assert convs(lake, B_KEY) == b_before


def test_message_sent_arriving_later_keeps_the_conversation_whole(lake):
    """Regression (found by the incremental == full property test): an ops batch with only a
    ``message_sent`` for an existing message re-sessionizes that message's contact with its history."""
    lid = "204519873310452@lid"
    land(lake, message("i1", lid, T0), message("o1", lid, T0 + minutes(5), from_me=True))
    build_silver(lake)
    land_ops(lake, op("s1", "message_sent", "+5531988887777", T0 + minutes(5), actor="att-3",
                      details={"message_id": "o1", "automated": False}))  # fmt: skip
    build_silver(lake)
    (c,) = convs(lake)
    assert (c["inbound_count"], c["outbound_count"]) == (1, 1)
    assert c["first_response_message_id"] == "o1" and c["first_responder_id"] == "att-3"
