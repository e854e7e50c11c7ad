"""Property: how bronze is cut into projector transactions never changes the live store."""

from __future__ import annotations

from pathlib import Path

import sqlalchemy as sa
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from core.settings import Settings
from live.projector import Projector
from storage import migrate
from storage.db import make_engine
from storage.instances import add_instance
from storage.lake import Lake
from storage.tables import conversations, messages
from tests.ops_helpers import BASE_TS, ack, msg, write_webhooks

event = st.tuples(
    st.integers(0, 3),  # contact
    st.integers(1, 40 * 3600),  # gap in seconds after the previous message (may exceed the timeout)
    st.booleans(),  # from me
    st.booleans(),  # duplicated
    st.sampled_from([None, "DELIVERY_ACK", "READ"]),  # an ack, maybe arriving before the message
)


def _state(engine: sa.Engine) -> tuple[list, list]:
    with engine.connect() as conn:
        convs = sorted(
            tuple(r)
            for r in conn.execute(
                sa.select(
                    conversations.c.id,
                    conversations.c.status,
                    conversations.c.inbound_count,
                    conversations.c.outbound_count,
                    conversations.c.first_response_message_id,
                    conversations.c.previous_conversation_id,
                )
            )
        )
        msgs = sorted(
            tuple(r)
            for r in conn.execute(sa.select(messages.c.message_id, messages.c.status, messages.c.conversation_id))
        )
    return convs, msgs


@settings(max_examples=12, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(events=st.lists(event, min_size=1, max_size=30), batch=st.integers(1, 7))
def test_batch_size_does_not_change_the_result(tmp_path_factory, events, batch):
    root: Path = tmp_path_factory.mktemp("prop")
    lake = Lake(str(root / "lake"))
    bodies = []
    ts = BASE_TS
    for n, (contact, gap, from_me, dup, status) in enumerate(events):
        ts += gap
        phone = f"551190000{contact:04d}"
        mid = f"m{n}"
        if status and from_me:
            bodies.append(ack("p", mid, status, phone=phone))  # before its message
        bodies.append(msg("p", mid, ts, phone=phone, from_me=from_me))
        if dup:
            bodies.append(msg("p", mid, ts, phone=phone, from_me=from_me))
    write_webhooks(lake, bodies[: len(bodies) // 2])
    write_webhooks(lake, bodies[len(bodies) // 2 :])
    results = []
    for rows in (10_000, batch):
        engine = make_engine(f"sqlite:///{root / f'db{rows}.db'}")
        migrate.upgrade(engine)
        add_instance(engine, "p", "acct")
        Projector(lake, engine, Settings(projector_batch_rows=rows)).run_once()
        results.append(_state(engine))
        engine.dispose()
    assert results[0] == results[1]
