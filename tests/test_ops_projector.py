"""Live projector: sessionization, acks/edits/revokes, actions from bronze, cursor and idempotency."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import sqlalchemy as sa

from live.projector import Projector, run_once
from storage.instances import add_instance
from storage.tables import actions, conversations, messages, pending_message_events, projector_cursors
from tests.ops_helpers import BASE_TS, ack, msg, revoke, write_ops_events, write_webhooks

INST = "loja"


def _convs(engine: sa.Engine) -> list[dict]:
    with engine.connect() as conn:
        return [dict(r._mapping) for r in conn.execute(sa.select(conversations).order_by(conversations.c.opened_at))]


def _msgs(engine: sa.Engine) -> dict[str, dict]:
    with engine.connect() as conn:
        return {r.message_id: dict(r._mapping) for r in conn.execute(sa.select(messages))}


def test_opens_first_response_and_acks(engine, lake):
    add_instance(engine, INST, "acct")
    write_webhooks(
        lake,
        [
            ack(INST, "out1", "READ"),  # arrives before its message
            msg(INST, "in1", BASE_TS),
            msg(INST, "in1", BASE_TS),  # duplicate delivery
            msg(INST, "out1", BASE_TS + 120, from_me=True, event="send.message"),
            msg(INST, "in2", BASE_TS + 300),
        ],
    )
    assert run_once(lake, engine) == 5
    convs = _convs(engine)
    assert len(convs) == 1
    c = convs[0]
    assert c["origin"] == "inbound" and c["status"] == "open"
    assert c["inbound_count"] == 2 and c["outbound_count"] == 1
    assert c["first_response_message_id"] == "out1"
    assert c["first_responder_id"] == "unattributed"
    assert c["contact_key"] == "+5511987654321"
    from core.identity import conversation_id

    assert c["id"] == conversation_id(INST, "+5511987654321", "in1")
    m = _msgs(engine)
    assert m["out1"]["status"] == "read"
    assert set(m) == {"in1", "out1", "in2"}
    # Nothing new: nothing applied, nothing doubled.
    assert run_once(lake, engine) == 0
    assert len(_msgs(engine)) == 3


def test_late_ack_and_revoke_are_pending_then_applied(engine, lake):
    add_instance(engine, INST, "acct")
    write_webhooks(lake, [ack(INST, "o9", "DELIVERY_ACK"), revoke(INST, "i9")])
    run_once(lake, engine)
    with engine.connect() as conn:
        assert conn.execute(sa.select(sa.func.count()).select_from(pending_message_events)).scalar() == 2
    write_webhooks(lake, [msg(INST, "i9", BASE_TS), msg(INST, "o9", BASE_TS + 5, from_me=True)])
    run_once(lake, engine)
    m = _msgs(engine)
    assert m["i9"]["revoked"] is True
    assert m["o9"]["status"] == "delivery_ack"
    with engine.connect() as conn:
        assert conn.execute(sa.select(sa.func.count()).select_from(pending_message_events)).scalar() == 0


def test_expiry_and_new_conversation_after_timeout(engine, lake):
    add_instance(engine, INST, "acct")
    write_webhooks(
        lake,
        [
            msg(INST, "a1", BASE_TS),
            msg(INST, "o1", BASE_TS + 60, from_me=True),  # answered: inactivity expiry applies
            msg(INST, "a2", BASE_TS + 60 + 25 * 3600),
        ],
    )
    run_once(lake, engine)
    convs = _convs(engine)
    assert [c["status"] for c in convs] == ["expired", "open"]
    assert convs[1]["previous_conversation_id"] == convs[0]["id"]
    assert convs[0]["closed_at"].replace(tzinfo=UTC) == datetime.fromtimestamp(BASE_TS + 60, UTC)


def test_waiting_conversation_never_expires_by_inactivity(engine, lake):
    add_instance(engine, INST, "acct")
    write_webhooks(lake, [msg(INST, "w1", BASE_TS), msg(INST, "w2", BASE_TS + 30 * 3600)])
    run_once(lake, engine)
    (c,) = _convs(engine)
    assert c["status"] == "open" and c["inbound_count"] == 2 and c["first_response_at"] is None


def test_bronze_actions_resolve_then_reopen_window(engine, lake):
    add_instance(engine, INST, "acct")
    t0 = datetime.fromtimestamp(BASE_TS, UTC)
    write_ops_events(
        lake,
        [
            {
                "action_id": "act1",
                "instance": INST,
                "contact_key": "+5511987654321",
                "action": "assign",
                "actor_id": "sup",
                "attendant_id": "ana",
                "team_id": "t1",
                "occurred_at": t0 + timedelta(seconds=30),
            },
            {
                "action_id": "act2",
                "instance": INST,
                "contact_key": "+5511987654321",
                "action": "resolve",
                "actor_id": "ana",
                "attendant_id": "ana",
                "occurred_at": t0 + timedelta(seconds=600),
            },
            {
                "action_id": "act3",
                "instance": INST,
                "action": "message_sent",
                "actor_id": "bot",
                "contact_key": "+5511987654321",
                "occurred_at": t0 + timedelta(seconds=60),
                "details": {"message_id": "bot1", "automated": True},
            },
        ],
    )
    write_webhooks(
        lake,
        [
            msg(INST, "q1", BASE_TS),
            msg(INST, "bot1", BASE_TS + 60, from_me=True),  # automated: never a first response
            msg(INST, "r1", BASE_TS + 120, from_me=True),
            msg(INST, "q2", BASE_TS + 3600),  # after the resolve, within the reopen window
        ],
    )
    run_once(lake, engine)
    convs = _convs(engine)
    assert len(convs) == 2
    first, second = convs
    assert first["status"] == "resolved" and first["assignee_id"] == "ana" and first["team_id"] == "t1"
    assert first["first_response_message_id"] == "r1"
    assert first["first_responder_id"] == "ana"  # the assignee at that moment
    assert first["reopened"] is True and second["is_reopen"] is True
    assert _msgs(engine)["bot1"]["automated"] is True
    with engine.connect() as conn:
        applied = dict(conn.execute(sa.select(actions.c.id, actions.c.conversation_id)).all())
    assert applied["act1"] == first["id"] and applied["act2"] == first["id"]
    # Re-reading the same ops events is idempotent by action id.
    write_ops_events(
        lake,
        [
            {
                "action_id": "act2",
                "instance": INST,
                "contact_key": "+5511987654321",
                "action": "resolve",
                "occurred_at": t0 + timedelta(seconds=600),
            }
        ],
    )
    run_once(lake, engine)
    with engine.connect() as conn:
        assert conn.execute(sa.select(sa.func.count()).select_from(actions)).scalar() == 3


def test_action_arriving_after_messages_is_drained(engine, lake):
    add_instance(engine, INST, "acct")
    t0 = datetime.fromtimestamp(BASE_TS, UTC)
    write_webhooks(lake, [msg(INST, "q1", BASE_TS), msg(INST, "x1", BASE_TS + 10, from_me=True)])
    run_once(lake, engine)
    assert _convs(engine)[0]["first_response_message_id"] == "x1"
    write_ops_events(
        lake,
        [
            {
                "action_id": "late-bot",
                "instance": INST,
                "action": "message_sent",
                "actor_id": "bot",
                "contact_key": "+5511987654321",
                "occurred_at": t0 + timedelta(seconds=10),
                "details": {"message_id": "x1", "automated": True},
            },
            {
                "action_id": "late-res",
                "instance": INST,
                "contact_key": "+5511987654321",
                "action": "resolve",
                "actor_id": "ana",
                "occurred_at": t0 + timedelta(seconds=100),
            },
        ],
    )
    run_once(lake, engine)
    c = _convs(engine)[0]
    assert c["first_response_at"] is None  # the only reply was automated
    assert c["status"] == "resolved"


def test_cursor_commits_with_writes_and_chunks(engine, lake, settings):
    add_instance(engine, INST, "acct")
    for i in range(3):
        write_webhooks(
            lake, [msg(INST, f"m{i}-{j}", BASE_TS + i * 10 + j, phone=f"55119876543{j:02d}") for j in range(7)]
        )
    settings.projector_batch_rows = 4  # several transactions per version
    p = Projector(lake, engine, settings)
    assert p.run_once() == 21
    with engine.connect() as conn:
        cur = conn.execute(sa.select(projector_cursors).where(projector_cursors.c.name == "webhook_events")).one()
    assert cur.version == lake.version("bronze/webhook_events") and cur.row_offset == 0
    assert len(_msgs(engine)) == 21
