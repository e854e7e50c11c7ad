"""Live queue stream: a webhook posted to the receiver reaches an open SSE stream; a reconnect with
Last-Event-ID gets only the missed events; another tenant never sees them (SQLite and PostgreSQL)."""

from __future__ import annotations

from datetime import UTC, datetime

import httpx
import orjson
import pytest

from live.projector import run_once
from storage.tokens import create_token
from tests.console_support import LiveServer, SseReader, poll
from tests.ops_helpers import msg


@pytest.fixture
def live(engine, settings):
    settings.instance_cache_refresh_seconds = 0.2
    settings.live_poll_seconds = 0.05
    settings.live_keepalive_seconds = 0.3
    server = LiveServer(engine, settings)
    base = server.start()
    readers: list[SseReader] = []
    yield base, readers
    for reader in readers:
        reader.close()
    server.stop()


def _instance(base: str, token: str, instance_id: str) -> str:
    r = httpx.post(f"{base}/v1/instances", json={"id": instance_id}, headers={"Authorization": f"Bearer {token}"})
    assert r.status_code == 201, r.text
    return r.json()["webhook_token"]


def _open(base: str, readers: list[SseReader], token: str, last: str | None = None, query: str = "") -> SseReader:
    headers = {"Authorization": f"Bearer {token}"}
    if last is not None:
        headers["Last-Event-ID"] = last
    reader = SseReader(f"{base}/v1/live/stream{query}", headers)
    readers.append(reader)
    reader.start()
    assert reader.connected.wait(10)
    assert reader.status == 200
    return reader


def _customer_writes(base: str, webhook_token: str, instance: str, mid: str, phone: str) -> None:
    body = msg(instance, mid, int(datetime.now(UTC).timestamp()) - 30, phone=phone)
    poll(
        lambda: (
            httpx.post(f"{base}/webhooks/evolution", json=body, headers={"apikey": webhook_token}).status_code == 200
        ),
        what="receiver accepts the webhook",
    )


def _project_until(lake, engine, condition, what: str):
    """Run the projector (as `beazap worker` does) until ``condition`` holds on the stream."""

    def step():
        run_once(lake, engine)
        return condition()

    return poll(step, what=what)


def test_webhook_reaches_stream_and_reconnect_catches_up(engine, lake, live):
    base, readers = live
    token_a, token_b = create_token(engine, "acme", "admin"), create_token(engine, "beta", "admin")
    hook_a, hook_b = _instance(base, token_a, "acme-1"), _instance(base, token_b, "beta-1")
    a = _open(base, readers, token_a)
    b = _open(base, readers, token_b)

    _customer_writes(base, hook_a, "acme-1", "m-1", "5511900000001")
    event = _project_until(lake, engine, lambda: a.events, "acme's event on acme's stream")[0]
    assert event["event"] == "conversation"
    assert event["data"]["kind"] == "waiting"
    assert event["data"]["conversation"]["instance_id"] == "acme-1"
    assert event["data"]["sla"]["state"] in ("ok", "at_risk", "breached")
    assert int(event["id"]) == event["data"]["id"]
    first_conv = event["data"]["conversation"]["id"]

    # Tenant B gets its own event (delivered after A's by the single feed) and never A's.
    _customer_writes(base, hook_b, "beta-1", "m-b1", "5511900000009")
    _project_until(lake, engine, lambda: b.events, "beta's event on beta's stream")
    assert {e["data"]["conversation"]["instance_id"] for e in b.events} == {"beta-1"}
    assert all(e["data"]["conversation"]["instance_id"] == "acme-1" for e in a.events)

    # A drops; a change happens meanwhile; the reconnect gets exactly the missed events.
    last = a.events[-1]["id"]
    seen_before = {e["id"] for e in a.events}
    a.close()
    _customer_writes(base, hook_a, "acme-1", "m-2", "5511900000002")
    poll(lambda: run_once(lake, engine) or _open_count(engine) == 3, what="second acme conversation stored")
    again = _open(base, readers, token_a, last=last)
    poll(lambda: again.events, what="missed event replayed")
    ids = [e["id"] for e in again.events]
    assert len(ids) == len(set(ids))
    assert not seen_before & set(ids)
    assert all(int(i) > int(last) for i in ids)
    assert first_conv not in again.conversation_ids()
    assert len(set(again.conversation_ids())) == 1
    assert {e["data"]["conversation"]["instance_id"] for e in again.events} == {"acme-1"}


def _open_count(engine) -> int:
    from sqlalchemy import func, select

    from storage.tables import conversations

    with engine.connect() as conn:
        return conn.execute(select(func.count()).select_from(conversations)).scalar_one()


def test_stream_scope_and_bad_input(engine, live):
    base, _readers = live
    token_a = create_token(engine, "acme", "admin")
    token_b = create_token(engine, "beta", "admin")
    _instance(base, token_a, "acme-1")
    h = {"Authorization": f"Bearer {token_b}"}
    r = httpx.get(f"{base}/v1/live/stream?instance_id=acme-1", headers=h)
    assert r.status_code == 404 and r.json()["error"]
    r = httpx.get(f"{base}/v1/live/stream", headers={**h, "Last-Event-ID": "abc"})
    assert r.status_code == 422 and "Last-Event-ID" in r.json()["error"]
    assert httpx.get(f"{base}/v1/live/stream").status_code == 401
    r = httpx.post(
        f"{base}/v1/attendants",
        json={"instance_id": "acme-1", "name": "Ana", "id": "ana"},
        headers={"Authorization": f"Bearer {token_a}"},
    )
    assert r.status_code == 201
    assert httpx.get(f"{base}/v1/live/stream?attendant_id=ana", headers=h).status_code == 404


def test_attendant_view_is_own_and_unassigned() -> None:
    from live.feed import Subscriber

    def event(instance: str, assignee: str | None, team: str | None = None) -> dict:
        return {"conversation": {"instance_id": instance, "assignee_id": assignee, "team_id": team}}

    ana = Subscriber(frozenset({"acme-1"}), None, 0, "ana")
    assert ana.wants(event("acme-1", "ana")) and ana.wants(event("acme-1", None))
    assert not ana.wants(event("acme-1", "bob")) and not ana.wants(event("beta-1", None))
    team = Subscriber(frozenset({"acme-1"}), "t1", 0)
    assert team.wants(event("acme-1", "bob", "t1")) and not team.wants(event("acme-1", "bob", "t2"))


def test_postgresql_notify_wakes_the_feed_before_its_poll_interval(engine):
    """With a 60 s poll interval only LISTEN/NOTIFY can deliver the change within the deadline."""
    if engine.dialect.name != "postgresql":
        pytest.skip("SQLite has no NOTIFY: the feed polls")
    import asyncio

    import sqlalchemy as sa

    from live.feed import ChangeFeed
    from storage.instances import add_instance
    from storage.tables import conversations

    add_instance(engine, "acme-1", "acme")

    async def scenario() -> bytes:
        feed = ChangeFeed(engine, interval=60.0)
        feed.start()
        sub = feed.subscribe(["acme-1"])
        try:
            assert await asyncio.to_thread(feed.listening.wait, 10)
            now = datetime.now(UTC)
            with engine.begin() as conn:
                conn.execute(
                    sa.insert(conversations).values(
                        id="cv-n", instance_id="acme-1", contact_key="k", origin="inbound",
                        opening_message_id="m", opened_at=now, last_message_at=now, status="open",
                    )
                )  # fmt: skip
            return await asyncio.wait_for(sub.queue.get(), 10)
        finally:
            await feed.stop()

    frame = asyncio.run(scenario())
    event = orjson.loads(frame.split(b"data: ", 1)[1])
    assert event["conversation"]["id"] == "cv-n" and event["kind"] == "waiting"
