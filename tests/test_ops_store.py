"""Operational store schema: no drift on SQLite and PostgreSQL, the seed's indexes used by the queue
and SLA queries (EXPLAIN), monthly partitions and their maintenance, action extraction, CLI."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pyarrow as pa
import pytest
import sqlalchemy as sa
from typer.testing import CliRunner

from bronze.schema import OPS_EVENTS
from live.actions import act
from live.extract import extract_actions
from live.projector import run_once
from storage import migrate, partitions
from storage.instances import add_instance
from storage.ops_repo import no_first_response_queue
from storage.tables import actions, conversations, messages
from storage.tokens import TenantScope
from tests.ops_helpers import BASE_TS, msg, write_webhooks


def test_models_and_migrations_do_not_drift(engine):
    assert migrate.drift(engine) == []
    with engine.connect() as conn:
        names = set(sa.inspect(conn).get_table_names())
    assert {"teams", "attendants", "conversations", "messages", "actions", "projector_cursors"} <= names


def _seed_conversations(engine: sa.Engine, n: int = 20000) -> None:
    """Many conversations, few of them open without a first response (the realistic shape)."""
    add_instance(engine, "big", "acct")
    add_instance(engine, "other", "acct")
    base = datetime(2026, 3, 1, tzinfo=UTC)
    rows = []
    for i in range(n):
        opened = base + timedelta(minutes=i)
        waiting = i % 100 in (0, 1)
        rows.append(
            {
                "id": f"cv_{i:08d}",
                "instance_id": "big" if i % 2 else "other",
                "contact_key": f"+55119{i:08d}",
                "origin": "inbound",
                "opening_message_id": f"m{i}",
                "opened_at": opened,
                "last_message_at": opened,
                "status": "open" if waiting or i % 7 == 0 else "resolved",
                "first_response_at": None if waiting else opened + timedelta(minutes=3),
            }
        )
    with engine.begin() as conn:
        conn.execute(sa.insert(conversations), rows)
        if engine.dialect.name == "postgresql":
            conn.execute(sa.text("ANALYZE conversations"))
        else:
            conn.execute(sa.text("ANALYZE"))


def _plan(engine: sa.Engine, stmt: sa.Select) -> str:
    compiled = stmt.compile(engine, compile_kwargs={"literal_binds": True})
    prefix = "EXPLAIN " if engine.dialect.name == "postgresql" else "EXPLAIN QUERY PLAN "
    with engine.connect() as conn:
        return "\n".join(str(r[-1]) for r in conn.execute(sa.text(prefix + str(compiled))))


def test_queue_and_sla_queries_use_the_seed_indexes(engine):
    _seed_conversations(engine)
    c = conversations
    queue = (
        sa.select(c)
        .where(c.c.instance_id.in_(["big"]), c.c.status == "open", c.c.first_response_at.is_(None))
        .order_by(c.c.opened_at)
        .limit(100)
    )
    at_risk = queue.where(c.c.opened_at < datetime(2026, 3, 5, tzinfo=UTC))
    for stmt in (queue, at_risk):
        assert "ix_conversations_sla_open" in _plan(engine, stmt)
    status = sa.select(sa.func.count()).select_from(c).where(c.c.instance_id == "big", c.c.status == "open")
    assert "ix_conversations_instance_id_status" in _plan(engine, status)
    listing = sa.select(c).where(c.c.instance_id == "big").order_by(c.c.opened_at.desc()).limit(50)
    assert "ix_conversations_instance_id_opened_at" in _plan(engine, listing)
    detail = sa.select(messages).where(messages.c.conversation_id == "cv_1").order_by(messages.c.timestamp).limit(50)
    assert "conversation_id_timestamp" in _plan(engine, detail)  # the index (or its partition copies)
    # The repository runs that same query and returns the waiting conversations, oldest first.
    scope = TenantScope("acct", "t", "read-only", frozenset({"big", "other"}))
    rows = no_first_response_queue(engine, scope, ["big"], limit=1000)
    assert rows and all(r["first_response_at"] is None and r["status"] == "open" for r in rows)
    assert [r["opened_at"] for r in rows] == sorted(r["opened_at"] for r in rows)


def test_messages_are_partitioned_by_month_on_postgresql(engine):
    if engine.dialect.name != "postgresql":
        pytest.skip("SQLite keeps a plain table")
    now = datetime(2026, 11, 15, tzinfo=UTC)
    report = partitions.maintain(engine, months_ahead=2, live_window_days=90, now=now)
    existing = partitions.existing_partitions(engine)
    assert {"messages_p202611", "messages_p202612", "messages_p202701"} <= set(existing)
    add_instance(engine, "p", "acct")
    with engine.begin() as conn:
        conn.execute(
            sa.text(
                "CREATE TABLE IF NOT EXISTS messages_p202607 PARTITION OF messages "
                "FOR VALUES FROM ('2026-07-01 00:00+00') TO ('2026-08-01 00:00+00')"
            )
        )
        conn.execute(
            sa.insert(messages),
            [
                {
                    "instance_id": "p",
                    "message_id": "old",
                    "timestamp": datetime(2026, 7, 10, tzinfo=UTC),
                    "direction": "inbound",
                    "kind": "text",
                },
                {
                    "instance_id": "p",
                    "message_id": "new",
                    "timestamp": datetime(2026, 11, 10, tzinfo=UTC),
                    "direction": "inbound",
                    "kind": "text",
                },
            ],
        )
        where = dict(conn.execute(sa.text("SELECT message_id, tableoid::regclass::text FROM messages")).all())
    assert where == {"old": "messages_p202607", "new": "messages_p202611"}
    report = partitions.maintain(engine, months_ahead=2, live_window_days=90, now=now)
    assert report.dropped == ["messages_p202607"] and report.created == []
    with engine.connect() as conn:
        assert conn.execute(sa.text("SELECT message_id FROM messages")).scalars().all() == ["new"]
    assert migrate.drift(engine) == []


def test_sqlite_maintenance_deletes_past_the_live_window(engine):
    if engine.dialect.name != "sqlite":
        pytest.skip("PostgreSQL drops partitions instead")
    add_instance(engine, "p", "acct")
    with engine.begin() as conn:
        conn.execute(
            sa.insert(messages),
            [
                {
                    "instance_id": "p",
                    "message_id": "old",
                    "timestamp": datetime(2026, 7, 10, tzinfo=UTC),
                    "direction": "inbound",
                    "kind": "text",
                },
                {
                    "instance_id": "p",
                    "message_id": "new",
                    "timestamp": datetime(2026, 11, 10, tzinfo=UTC),
                    "direction": "inbound",
                    "kind": "text",
                },
            ],
        )
    report = partitions.maintain(engine, live_window_days=90, now=datetime(2026, 11, 15, tzinfo=UTC))
    assert report.deleted_rows == 1


def test_extract_actions_is_idempotent_even_after_a_crash(engine, lake):
    add_instance(engine, "x", "acct")
    write_webhooks(lake, [msg("x", "m1", BASE_TS), msg("x", "m2", BASE_TS + 60, phone="5511900000002")])
    run_once(lake, engine)
    scope = TenantScope("acct", "t", "admin", frozenset({"x"}))
    with engine.connect() as conn:
        ids = conn.execute(sa.select(conversations.c.id).order_by(conversations.c.opened_at)).scalars().all()
    act(engine, scope, ids[0], "resolve", actor_id="ana")
    assert extract_actions(engine, lake) == 1
    assert extract_actions(engine, lake) == 0
    act(engine, scope, ids[1], "resolve", actor_id="bia")
    # Crash after the lake append but before marking: simulate by clearing the mark of both.
    assert extract_actions(engine, lake) == 1
    with engine.begin() as conn:
        conn.execute(sa.update(actions).values(extracted_at=None))
    assert extract_actions(engine, lake) == 0
    table = pa.table(lake.open(OPS_EVENTS).to_pyarrow_dataset().to_table())
    assert sorted(table["actor_id"].to_pylist()) == ["ana", "bia"]
    assert set(table["conversation_id"].to_pylist()) == set(ids)
    # The projector reading its own extracted actions back changes nothing.
    run_once(lake, engine)
    with engine.connect() as conn:
        assert conn.execute(sa.select(sa.func.count()).select_from(actions)).scalar() == 2


def test_cli_worker_once_and_maintenance(settings, lake, monkeypatch):
    from beazap.cli import app
    from storage.db import get_engine

    engine = get_engine()
    migrate.upgrade(engine)
    add_instance(engine, "cli", "acct")
    write_webhooks(lake, [msg("cli", "c1", BASE_TS)])
    runner = CliRunner()
    r = runner.invoke(app, ["worker", "--once"])
    assert r.exit_code == 0, r.output
    assert "applied 1" in r.output
    r = runner.invoke(app, ["ops", "queue"])
    assert r.exit_code == 0 and "cv_" in r.output
    r = runner.invoke(app, ["ops", "maintain-partitions", "--live-window-days", "1"])
    assert r.exit_code == 0 and "rows deleted: 1" in r.output
