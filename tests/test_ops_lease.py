"""One projector per database: the lease (storage.leases), its fencing of every projector write, two
concurrent workers, and ``beazap worker --once`` beside a running worker. SQLite and PostgreSQL."""

from __future__ import annotations

import threading
import time
from datetime import UTC, datetime, timedelta

import pytest
import sqlalchemy as sa
from typer.testing import CliRunner

from live.projector import PROJECTOR_LEASE, Projector, run_forever
from live.store_sql import read_cursor
from storage.instances import add_instance
from storage.lake import Lake
from storage.leases import Lease, LeaseLostError, current
from storage.tables import conversations, leases, messages, projector_cursors
from tests.ops_helpers import BASE_TS, msg, write_webhooks

INST = "loja"


def _expire(engine: sa.Engine, name: str) -> None:
    with engine.begin() as conn:
        conn.execute(
            sa.update(leases).where(leases.c.name == name).values(expires_at=datetime.now(UTC) - timedelta(hours=1))
        )


def _count(engine: sa.Engine, table: sa.Table) -> int:
    with engine.connect() as conn:
        return int(conn.execute(sa.select(sa.func.count()).select_from(table)).scalar_one())


def test_lease_has_one_holder_until_released_or_expired(engine: sa.Engine) -> None:
    a, b = Lease(engine, "role"), Lease(engine, "role")
    assert a.acquire()
    assert a.acquire()  # re-entrant for its holder
    assert not b.acquire()
    held = current(engine, "role")
    assert held is not None and held.holder == a.holder and held.expires_at > datetime.now(UTC)
    a.release()
    assert current(engine, "role") is None
    assert b.acquire()
    _expire(engine, "role")
    assert a.acquire()  # an expired lease is taken over
    with pytest.raises(LeaseLostError), engine.begin() as conn:
        b.fence(conn)
    a.renew()  # the holder renews fine
    assert Lease(engine, "other").acquire()  # names are independent


def test_a_projector_that_lost_its_lease_writes_nothing(engine: sa.Engine, lake: Lake) -> None:
    add_instance(engine, INST, "acct")
    write_webhooks(lake, [msg(INST, "in1", BASE_TS), msg(INST, "in2", BASE_TS + 60)])
    stalled = Lease(engine, PROJECTOR_LEASE)
    assert stalled.acquire()
    _expire(engine, PROJECTOR_LEASE)  # it stalled past its TTL …
    standby = Lease(engine, PROJECTOR_LEASE)
    assert standby.acquire()  # … and a standby took over
    with pytest.raises(LeaseLostError):
        Projector(lake, engine, lease=stalled).run_once()
    assert _count(engine, messages) == 0 and _count(engine, conversations) == 0
    with engine.connect() as conn:
        assert read_cursor(conn, "webhook_events") == (-1, 0)
    assert Projector(lake, engine, lease=standby).run_once() == 2
    assert _count(engine, messages) == 2


def test_two_workers_apply_every_row_once(engine: sa.Engine, lake: Lake) -> None:
    add_instance(engine, INST, "acct")
    phones = [f"55119876543{i:02d}" for i in range(20)]
    for round_no in range(5):  # five bronze versions
        write_webhooks(
            lake,
            [msg(INST, f"m{round_no}-{i}", BASE_TS + round_no * 60 + i, phone=phone) for i, phone in enumerate(phones)],
        )
    latest = lake.open("bronze/webhook_events").version()
    done = threading.Event()
    errors: list[BaseException] = []
    workers_leases = [Lease(engine, PROJECTOR_LEASE, ttl=timedelta(seconds=30)) for _ in range(2)]

    def _work(lease: Lease) -> None:
        try:
            run_forever(lake, engine, stop=done.is_set, lease=lease)
        except BaseException as exc:  # surfaced to the test below
            errors.append(exc)

    threads = [threading.Thread(target=_work, args=(le,)) for le in workers_leases]
    for t in threads:
        t.start()
    deadline = time.monotonic() + 60
    while True:
        with engine.connect() as conn:
            if read_cursor(conn, "webhook_events")[0] >= latest:
                break
        assert time.monotonic() < deadline, "workers did not catch up within 60 s"
        time.sleep(0.05)  # polling the committed cursor against a deadline
    done.set()
    for t in threads:
        t.join(timeout=30)
    assert not errors, errors
    assert _count(engine, messages) == 100  # every row once, none doubled
    assert _count(engine, conversations) == 20  # one per contact
    with engine.connect() as conn:
        counts = conn.execute(sa.select(conversations.c.inbound_count)).scalars().all()
        assert set(counts) == {5}
        assert conn.execute(sa.select(sa.func.count()).select_from(projector_cursors)).scalar_one() >= 1
    assert current(engine, PROJECTOR_LEASE) is None  # the holder released it on stop


def test_cli_worker_once_refuses_while_another_worker_holds_the_lease(settings, lake: Lake) -> None:
    from beazap.cli import app
    from storage import migrate
    from storage.db import get_engine

    engine = get_engine()
    migrate.upgrade(engine)
    add_instance(engine, "cli", "acct")
    write_webhooks(lake, [msg("cli", "c1", BASE_TS)])
    running = Lease(engine, PROJECTOR_LEASE)
    assert running.acquire()
    result = CliRunner().invoke(app, ["worker", "--once"])
    assert result.exit_code == 1
    assert "another worker holds the projector lease" in result.output
    assert _count(engine, messages) == 0
    running.release()
    result = CliRunner().invoke(app, ["worker", "--once"])
    assert result.exit_code == 0, result.output
    assert "applied 1" in result.output
    assert current(engine, PROJECTOR_LEASE) is None
