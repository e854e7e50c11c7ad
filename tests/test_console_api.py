"""Console API: quick replies, presence (and round-robin only picking online attendants), SLA alerts
with in-app notifications and a signed outbound webhook (SQLite and PostgreSQL)."""

from __future__ import annotations

import hashlib
import hmac
from datetime import UTC, datetime, timedelta

import orjson
import pytest
import sqlalchemy as sa
from fastapi.testclient import TestClient

from api.app import create_app
from live import alerts
from live.assignment import pick_round_robin
from live.presence import state
from storage.tables import attendant_presence, conversations, instances
from storage.tokens import create_token
from tests.console_support import WebhookReceiver

SECRET = "s3cret-for-tests-0123"


@pytest.fixture
def api(engine, settings):
    app = create_app(settings)
    app.state.engine = engine
    client = TestClient(app)
    admin = create_token(engine, "acme", "admin")
    other = create_token(engine, "globex", "admin")
    client.headers["Authorization"] = f"Bearer {admin}"
    r = client.post("/v1/instances", json={"id": "acme-1", "timezone": "America/Sao_Paulo"})
    assert r.status_code == 201, r.text
    client.other = {"Authorization": f"Bearer {other}"}  # type: ignore[attr-defined]
    return client


def test_quick_replies_crud_and_shortcut(api: TestClient) -> None:
    r = api.post("/v1/quick-replies", json={"shortcut": "/Saudacao", "title": "Olá", "body": "Olá! Como posso ajudar?"})
    assert r.status_code == 201, r.text
    reply = r.json()
    assert reply["shortcut"] == "saudacao"
    api.post("/v1/quick-replies", json={"shortcut": "prazo", "title": "Prazo", "body": "O prazo é de 3 dias."})
    assert api.get("/v1/quick-replies/shortcut/saudacao").json()["id"] == reply["id"]
    assert [q["shortcut"] for q in api.get("/v1/quick-replies", params={"prefix": "/sa"}).json()] == ["saudacao"]
    assert len(api.get("/v1/quick-replies").json()) == 2

    dup = api.post("/v1/quick-replies", json={"shortcut": "prazo", "title": "x", "body": "y"})
    assert dup.status_code == 409 and "prazo" in dup.json()["error"]
    bad = api.post("/v1/quick-replies", json={"shortcut": "/com espaço", "title": "x", "body": "y"})
    assert bad.status_code == 422 and "shortcut" in bad.json()["error"]

    r = api.patch(f"/v1/quick-replies/{reply['id']}", json={"body": "Oi! Em que posso ajudar?"})
    assert r.status_code == 200 and r.json()["body"] == "Oi! Em que posso ajudar?"

    # Another account sees none of them and cannot touch them.
    assert api.get("/v1/quick-replies", headers=api.other).json() == []
    assert api.get(f"/v1/quick-replies/{reply['id']}", headers=api.other).status_code == 404
    assert api.delete(f"/v1/quick-replies/{reply['id']}", headers=api.other).status_code == 404
    assert api.get("/v1/quick-replies/shortcut/saudacao", headers=api.other).status_code == 404

    assert api.delete(f"/v1/quick-replies/{reply['id']}").status_code == 204
    assert api.get(f"/v1/quick-replies/{reply['id']}").status_code == 404


def test_presence_states_and_round_robin_picks_online_only(api: TestClient, engine, settings) -> None:
    now = datetime(2026, 12, 7, 12, 0, tzinfo=UTC)
    assert state(now - timedelta(minutes=1), False, now, settings) == "online"
    assert state(now - timedelta(minutes=1), True, now, settings) == "away"
    assert state(now - timedelta(minutes=settings.presence_away_minutes), False, now, settings) == "away"
    assert state(now - timedelta(minutes=settings.presence_offline_minutes), False, now, settings) == "offline"
    assert state(None, False, now, settings) == "offline"

    for name in ("ana", "bob"):
        assert api.post("/v1/attendants", json={"instance_id": "acme-1", "name": name, "id": name}).status_code == 201
    r = api.post("/v1/attendants/ana/heartbeat", json={})
    assert r.status_code == 200 and r.json()["state"] == "online"
    assert api.post("/v1/attendants/ana/heartbeat", headers=api.other).status_code == 404
    with engine.begin() as conn:  # bob was last seen long ago
        conn.execute(
            sa.insert(attendant_presence).values(
                attendant_id="bob",
                last_seen_at=datetime.now(UTC) - timedelta(minutes=settings.presence_away_minutes + 1),
            )
        )
        # bob would be first in round-robin order (assigned longest ago / never).
        conn.execute(
            sa.update(sa.table("attendants", sa.column("id"), sa.column("last_assigned_at")))
            .where(sa.column("id") == "ana")
            .values(last_assigned_at=datetime.now(UTC))
        )
    states = {p["attendant_id"]: p["state"] for p in api.get("/v1/presence").json()}
    assert states == {"ana": "online", "bob": "away"}
    with engine.connect() as conn:
        assert pick_round_robin(conn, "acme-1", None) == "ana"
    api.post("/v1/attendants/ana/heartbeat", json={"away": True})
    with engine.connect() as conn:
        assert pick_round_robin(conn, "acme-1", None) is None


def _conversation(engine, conv_id: str, opened: datetime, assignee: str | None = None) -> None:
    with engine.begin() as conn:
        conn.execute(
            sa.insert(conversations).values(
                id=conv_id,
                instance_id="acme-1",
                contact_key="k-" + conv_id,
                origin="inbound",
                opening_message_id="m-" + conv_id,
                opened_at=opened,
                last_message_at=opened,
                status="open",
                assignee_id=assignee,
            )
        )


def _policy(engine, basis: str) -> None:
    with engine.begin() as conn:
        conn.execute(
            sa.update(instances)
            .where(instances.c.id == "acme-1")
            .values(sla_policy={"first_response": {"minutes": 10, "basis": basis}, "resolution": None})
        )


def test_alerts_fire_once_with_notifications_and_signed_webhook(api: TestClient, engine, settings) -> None:
    _policy(engine, "calendar")
    api.post("/v1/attendants", json={"instance_id": "acme-1", "name": "Ana", "id": "ana"})
    t0 = datetime(2026, 12, 7, 14, 0, tzinfo=UTC)  # Monday 11:00 local
    _conversation(engine, "cv-1", t0, assignee="ana")
    with WebhookReceiver(statuses=[500]) as receiver:
        r = api.put("/v1/alerts/webhook", json={"url": receiver.url, "secret": SECRET})
        assert r.status_code == 200 and r.json() == {**r.json(), "url": receiver.url, "secret_set": True}
        assert "secret" not in r.json()

        assert alerts.scan(engine, t0 + timedelta(minutes=7)) == []  # 70 %: on time
        at_risk = t0 + timedelta(minutes=8, seconds=30)
        first = alerts.scan(engine, at_risk)
        assert len(first) == 1
        assert alerts.scan(engine, at_risk + timedelta(seconds=30)) == []  # same state change: not again

        notes = api.get("/v1/notifications").json()
        assert sorted(n["recipient"] for n in notes) == ["ana", "supervisors"]
        assert {n["state"] for n in notes} == {"at_risk"} and {n["clock"] for n in notes} == {"first_response"}
        assert api.get("/v1/notifications", headers=api.other).json() == []

        # First delivery fails (HTTP 500) and is retried after the backoff with the same idempotency id.
        assert alerts.deliver_due(engine, at_risk, settings) == 0
        assert alerts.deliver_due(engine, at_risk + timedelta(seconds=1), settings) == 0  # not due yet
        assert len(receiver.requests) == 1
        retry_at = at_risk + timedelta(seconds=settings.alert_webhook_backoff_seconds)
        assert alerts.deliver_due(engine, retry_at, settings) == 1
        assert alerts.deliver_due(engine, retry_at + timedelta(hours=1), settings) == 0  # delivered: never again
        assert len(receiver.requests) == 2
        (h1, _b1), (h2, b2) = receiver.requests
        assert h1["idempotency-key"] == h2["idempotency-key"] == f"sla-alert-{first[0]}"
        for headers, body in receiver.requests:
            expected = hmac.new(SECRET.encode(), headers["x-beazap-timestamp"].encode() + b"." + body, hashlib.sha256)
            assert headers["x-beazap-signature"] == "sha256=" + expected.hexdigest()
        payload = orjson.loads(b2)
        assert payload["type"] == "sla.at_risk" and payload["conversation_id"] == "cv-1"

        # Crossing the target is a new state change: one more alert.
        assert len(alerts.scan(engine, t0 + timedelta(minutes=11))) == 1
        assert alerts.deliver_due(engine, t0 + timedelta(minutes=11), settings) == 1
        assert orjson.loads(receiver.requests[-1][1])["type"] == "sla.breached"

    note = next(n for n in api.get("/v1/notifications", params={"recipient": "ana"}).json())
    assert api.post(f"/v1/notifications/{note['id']}/ack", headers=api.other).status_code == 404
    assert api.post(f"/v1/notifications/{note['id']}/ack").status_code == 204
    assert note["id"] not in {n["id"] for n in api.get("/v1/notifications", params={"recipient": "ana"}).json()}


def test_business_basis_alerts_wait_for_opening_hours(api: TestClient, engine) -> None:
    _policy(engine, "business")
    friday_1750 = datetime(2026, 12, 4, 20, 50, tzinfo=UTC)  # 17:50 in São Paulo; closes at 18:00
    _conversation(engine, "cv-2", friday_1750)
    assert alerts.scan(engine, friday_1750 + timedelta(minutes=15)) == []  # breached, but closed now
    assert alerts.scan(engine, datetime(2026, 12, 5, 15, 0, tzinfo=UTC)) == []  # Saturday: closed
    monday = datetime(2026, 12, 7, 11, 1, tzinfo=UTC)  # 08:01 local
    assert len(alerts.scan(engine, monday)) == 1
    assert alerts.scan(engine, monday + timedelta(minutes=1)) == []


def test_alert_webhook_input_errors(api: TestClient) -> None:
    assert api.get("/v1/alerts/webhook").status_code == 404
    r = api.put("/v1/alerts/webhook", json={"url": "ftp://x.example/a", "secret": SECRET})
    assert r.status_code == 422 and "url" in r.json()["error"]
    assert api.put("/v1/alerts/webhook", json={"url": "http://127.0.0.1:9/a", "secret": "short"}).status_code == 422


def test_worker_tick_trims_the_change_log(api: TestClient, engine, settings) -> None:
    from storage.tables import live_changes

    old = datetime.now(UTC) - timedelta(hours=settings.live_changes_keep_hours + 1)
    with engine.begin() as conn:
        conn.execute(sa.insert(live_changes).values(instance_id="acme-1", conversation_id="gone", changed_at=old))
    _conversation(engine, "cv-fresh", datetime.now(UTC))  # the trigger logs it now
    alerts.tick(engine, settings, interval=0)
    with engine.connect() as conn:
        left = set(conn.execute(sa.select(live_changes.c.conversation_id)).scalars())
    assert left == {"cv-fresh"}


def test_console_migration_downgrades_and_upgrades(api: TestClient, engine) -> None:
    from storage import migrate
    from storage.tables import live_changes

    migrate.downgrade(engine, "0009_leases")
    assert "live_changes" not in sa.inspect(engine).get_table_names()
    migrate.upgrade(engine)
    assert migrate.drift(engine) == []
    _conversation(engine, "cv-after", datetime.now(UTC))  # the trigger is back
    with engine.connect() as conn:
        assert conn.execute(sa.select(live_changes.c.conversation_id)).scalars().all() == ["cv-after"]
