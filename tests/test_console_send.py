"""Reply box over the existing send path: the reply moves server_ack → delivery_ack → read as acks
land; an Evolution failure answers its reason and the same Idempotency-Key retries without a second
send (fake Evolution on loopback; SQLite and PostgreSQL)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from fastapi.testclient import TestClient

from api.app import create_app
from live.projector import run_once
from storage.tokens import create_token
from tests.fakes.evolution import running_fake_evolution
from tests.ops_helpers import ack, msg, write_webhooks


@pytest.fixture
def setup(engine, settings, lake):
    settings.evolution_retries = 1
    app = create_app(settings)
    app.state.engine = engine
    client = TestClient(app)
    client.headers["Authorization"] = f"Bearer {create_token(engine, 'acme', 'admin')}"
    with running_fake_evolution() as evo:
        r = client.post(
            "/v1/instances", json={"id": "acme-1", "evolution_base_url": evo.base_url, "evolution_api_key": "evo-key"}
        )
        assert r.status_code == 201, r.text
        ts = int((datetime.now(UTC) - timedelta(minutes=2)).timestamp())
        write_webhooks(lake, [msg("acme-1", "in-1", ts)])
        run_once(lake, engine)
        conv = client.get("/v1/conversations").json()["items"][0]
        yield client, evo, conv


def _status(client: TestClient, conv_id: str, mid: str) -> str | None:
    items = client.get(f"/v1/conversations/{conv_id}").json()["messages"]["items"]
    return next((m["status"] for m in items if m["message_id"] == mid), None)


def test_reply_ticks_follow_acks_and_failures_retry_once(setup, engine, lake):
    client, evo, conv = setup
    evo.fail_next = [500]
    url = f"/v1/conversations/{conv['id']}/messages"
    r = client.post(url, json={"text": "Olá!"}, headers={"Idempotency-Key": "reply-1"})
    assert r.status_code == 502 and "boom" in r.json()["error"]
    assert evo.sent == []
    r = client.post(url, json={"text": "Olá!"}, headers={"Idempotency-Key": "reply-1"})
    assert r.status_code == 201, r.text
    mid = r.json()["message_id"]
    again = client.post(url, json={"text": "Olá!"}, headers={"Idempotency-Key": "reply-1"})
    assert again.status_code == 200 and again.json()["replayed"] is True
    assert len(evo.sent) == 1

    write_webhooks(lake, evo.outbox)
    run_once(lake, engine)
    assert _status(client, conv["id"], mid) == "server_ack"
    for wire, expected in (("DELIVERY_ACK", "delivery_ack"), ("READ", "read"), ("DELIVERY_ACK", "read")):
        write_webhooks(lake, [ack("acme-1", mid, wire)])
        run_once(lake, engine)
        assert _status(client, conv["id"], mid) == expected  # never goes backwards
