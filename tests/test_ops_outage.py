"""A PostgreSQL outage pauses the projector (never bronze); on recovery it catches up from its cursor
with nothing lost or doubled — compared with a clean run of the same bronze on another database."""

from __future__ import annotations

import threading
import time

import pytest
import sqlalchemy as sa

from live.projector import WEBHOOK_CURSOR, run_forever, run_once
from storage import migrate
from storage.db import make_engine
from storage.instances import add_instance
from storage.tables import conversations, messages, projector_cursors
from tests.fakes.tcp_proxy import TcpProxy
from tests.ops_helpers import BASE_TS, ack, msg, write_webhooks


def _batch(i: int) -> list[dict]:
    out = []
    for j in range(8):
        phone = f"55119000{j:05d}"
        ts = BASE_TS + i * 600 + j
        out.append(msg("o", f"in-{i}-{j}", ts, phone=phone))
        out.append(msg("o", f"in-{i}-{j}", ts, phone=phone))  # duplicate delivery
        if j % 2 == 0:
            out.append(msg("o", f"out-{i}-{j}", ts + 30, phone=phone, from_me=True))
            out.append(ack("o", f"out-{i}-{j}", "DELIVERY_ACK", phone=phone))
    return out


def _cursor(engine: sa.Engine) -> int:
    with engine.connect() as conn:
        v = conn.execute(
            sa.select(projector_cursors.c.version).where(projector_cursors.c.name == WEBHOOK_CURSOR)
        ).scalar()
    return -1 if v is None else int(v)


def _wait(predicate, timeout: float = 60.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return
        time.sleep(0.05)
    raise AssertionError("condition not reached before the deadline")


def _state(engine: sa.Engine) -> tuple[set, set]:
    with engine.connect() as conn:
        convs = {
            (r.id, r.status, r.inbound_count, r.outbound_count, r.first_response_message_id, r.opening_message_id)
            for r in conn.execute(sa.select(conversations))
        }
        msgs = {(r.message_id, r.status, r.conversation_id, r.direction) for r in conn.execute(sa.select(messages))}
    return convs, msgs


def test_outage_pauses_projector_and_catch_up_loses_and_doubles_nothing(db_url, lake, settings, tmp_path):
    if not db_url.startswith("postgresql"):
        pytest.skip("the outage is a PostgreSQL scenario (proxy on loopback)")
    direct = make_engine(db_url)
    migrate.upgrade(direct)
    add_instance(direct, "o", "acct")
    proxy = TcpProxy("127.0.0.1", 5432)
    host, rest = db_url.split("@", 1)
    proxied = make_engine(f"{host}@127.0.0.1:{proxy.port}/{rest.split('/', 1)[1]}", pool_size=2, max_overflow=0)
    settings.projector_poll_ms = 20
    settings.projector_batch_rows = 16
    stop = threading.Event()
    errors: list[BaseException] = []

    def work() -> None:
        try:
            run_forever(lake, proxied, settings=settings, stop=stop.is_set)
        except BaseException as exc:  # pragma: no cover - surfaced below
            errors.append(exc)

    for i in range(5):
        write_webhooks(lake, _batch(i))
    worker = threading.Thread(target=work, daemon=True)
    worker.start()
    try:
        _wait(lambda: _cursor(direct) >= lake.version("bronze/webhook_events"))
        proxy.cut()
        before = _cursor(direct)
        for i in range(5, 12):  # the receiver keeps landing webhooks in bronze during the outage
            write_webhooks(lake, _batch(i))
        assert _cursor(direct) == before  # nothing applied while the database is unreachable
        proxy.restore()
        for i in range(12, 15):
            write_webhooks(lake, _batch(i))
        _wait(lambda: _cursor(direct) >= lake.version("bronze/webhook_events"))
    finally:
        stop.set()
        worker.join(timeout=30)
        proxy.close()
        proxied.dispose()
    assert not errors

    clean = make_engine(f"sqlite:///{tmp_path / 'clean.db'}")
    migrate.upgrade(clean)
    add_instance(clean, "o", "acct")
    run_once(lake, clean)
    live_convs, live_msgs = _state(direct)
    clean_convs, clean_msgs = _state(clean)
    assert len(live_msgs) == 15 * 12  # 8 inbound + 4 outbound per batch, duplicates counted once
    assert live_msgs == clean_msgs
    assert live_convs == clean_convs
    direct.dispose()
    clean.dispose()
