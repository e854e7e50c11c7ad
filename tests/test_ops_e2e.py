"""End to end over real HTTP on loopback: BeaZap points the (fake) Evolution instance's webhook at its
own receiver, a customer writes, the attendant answers through the operational API, Evolution posts
the resulting webhooks back to the receiver, and the projector makes them visible with attribution."""

from __future__ import annotations

import threading
import time
from datetime import UTC, datetime

import httpx
import pytest
import uvicorn

from api.app import create_app
from live.projector import run_once
from storage.tokens import create_token
from tests.fakes.evolution import running_fake_evolution
from tests.ops_helpers import msg


@pytest.fixture
def server(engine, settings):
    settings.instance_cache_refresh_seconds = 0.2
    app = create_app(settings)
    app.state.engine = engine
    config = uvicorn.Config(app, host="127.0.0.1", port=0, log_level="warning", lifespan="on")
    srv = uvicorn.Server(config)
    thread = threading.Thread(target=srv.run, daemon=True)
    holder: dict = {"app": app}
    yield srv, thread, holder
    srv.should_exit = True
    thread.join(timeout=10)


def _start(srv: uvicorn.Server, thread: threading.Thread) -> str:
    thread.start()
    deadline = time.monotonic() + 20
    while not srv.started:
        assert time.monotonic() < deadline, "server did not start"
        time.sleep(0.02)
    port = srv.servers[0].sockets[0].getsockname()[1]
    return f"http://127.0.0.1:{port}"


def _poll(predicate, timeout: float = 20.0):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = predicate()
        if value:
            return value
        time.sleep(0.05)
    raise AssertionError("not reached before the deadline")


def test_send_round_trip_through_the_receiver(engine, lake, settings, server):
    srv, thread, _holder = server  # the receiver route is live in this app (api.ingest)
    token = create_token(engine, "acme", "admin")
    h = {"Authorization": f"Bearer {token}"}
    with running_fake_evolution() as evo:
        base = _start(srv, thread)
        api = httpx.Client(base_url=base, headers=h, timeout=30)
        r = api.post(
            "/v1/instances",
            json={"id": "acme-1", "evolution_base_url": evo.base_url, "evolution_api_key": "evo-key"},
        )
        assert r.status_code == 201, r.text
        webhook_token = r.json()["webhook_token"]
        r = api.post(
            "/v1/instances/acme-1/webhook",
            json={"url": f"{base}/webhooks/evolution", "token": webhook_token},
        )
        assert r.status_code == 200, r.text
        assert evo.webhooks["acme-1"]["headers"] == {"apikey": webhook_token}
        attendant = api.post("/v1/attendants", json={"instance_id": "acme-1", "name": "Ana", "id": "ana"}).json()

        # The customer writes (Evolution posts to the receiver with the configured header).
        body = msg("acme-1", "cust-1", int(datetime.now(UTC).timestamp()) - 60)
        post = _poll(
            lambda: (
                resp
                if (
                    resp := httpx.post(f"{base}/webhooks/evolution", json=body, headers={"apikey": webhook_token})
                ).status_code
                == 200
                else None
            )
        )
        assert post.status_code == 200
        run_once(lake, engine)
        conv = api.get("/v1/conversations").json()["items"][0]

        r = api.post(
            f"/v1/conversations/{conv['id']}/messages",
            json={"text": "Olá! Já verifico.", "attendant_id": attendant["id"]},
            headers={"Idempotency-Key": "e2e-1"},
        )
        assert r.status_code == 201, r.text
        mid = r.json()["message_id"]
        assert [status for status, _env in evo.posted] == [200, 200]  # send.message + ack, both accepted

        def visible():
            run_once(lake, engine)
            detail = api.get(f"/v1/conversations/{conv['id']}").json()
            return detail if detail["first_response_at"] else None

        detail = _poll(visible)
        assert detail["first_responder_id"] == "ana"
        sent = next(m for m in detail["messages"]["items"] if m["message_id"] == mid)
        assert sent["direction"] == "outbound" and sent["sender_attendant_id"] == "ana"
        assert sent["status"] == "server_ack"
        assert api.get("/v1/sla/queue").json()["items"] == []
