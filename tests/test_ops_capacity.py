"""Attendant capacity holds when several assigners route at once, on SQLite and PostgreSQL."""

from __future__ import annotations

import threading
from datetime import UTC, datetime, timedelta

import sqlalchemy as sa

from live.assignment import assign_next
from storage.instances import add_instance
from storage.tables import attendants, conversations, teams

CAPACITY = 5
WAITING = 16


def _seed(engine: sa.Engine) -> None:
    add_instance(engine, "cap-1", "acct")
    base = datetime.now(UTC) - timedelta(minutes=30)  # waiting now: not past the abandonment limit
    with engine.begin() as conn:
        conn.execute(sa.insert(teams).values(id="t1", instance_id="cap-1", name="T"))
        conn.execute(
            sa.insert(attendants).values(id="a1", instance_id="cap-1", team_id="t1", name="A", capacity=CAPACITY)
        )
        conn.execute(
            sa.insert(conversations),
            [
                {
                    "id": f"cv_{i:04d}",
                    "instance_id": "cap-1",
                    "contact_key": f"+551198765{i:04d}",
                    "origin": "inbound",
                    "opening_message_id": f"m{i}",
                    "opened_at": base + timedelta(seconds=i),
                    "last_message_at": base + timedelta(seconds=i),
                    "status": "open",
                }
                for i in range(WAITING)
            ],
        )


def test_capacity_holds_under_concurrent_assigners(engine: sa.Engine) -> None:
    _seed(engine)
    start = threading.Barrier(WAITING)
    errors: list[BaseException] = []

    def assign(conv_id: str) -> None:
        start.wait()
        try:
            assign_next(engine, conv_id, team_id="t1")
        except BaseException as exc:  # reported below
            errors.append(exc)

    threads = [threading.Thread(target=assign, args=(f"cv_{i:04d}",)) for i in range(WAITING)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert errors == []
    with engine.connect() as conn:
        held = conn.execute(
            sa.select(sa.func.count()).where(conversations.c.assignee_id == "a1", conversations.c.status == "open")
        ).scalar()
    assert held == CAPACITY  # every free slot is used, and never one more
