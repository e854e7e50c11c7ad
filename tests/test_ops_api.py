"""Operational API end to end: CRUD, conversations, actions with 409s, auto-assignment, sending through
a fake Evolution server (idempotency, retries, 502), webhook set-up, SLA queues, tenant isolation."""

from __future__ import annotations

import threading
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
import sqlalchemy as sa
from fastapi.testclient import TestClient

from api.app import create_app
from live.projector import run_once
from storage.tables import actions, conversations
from storage.tokens import create_token
from tests.fakes.evolution import running_fake_evolution
from tests.ops_helpers import msg, write_webhooks


@pytest.fixture
def fake_evo():
    with running_fake_evolution() as fake:
        yield fake


@pytest.fixture
def api(engine, settings, fake_evo):
    settings.evolution_retries = 3
    app = create_app(settings)
    app.state.engine = engine
    client = TestClient(app)
    admin = create_token(engine, "acme", "admin")
    agent = create_token(engine, "acme", "agent")
    reader = create_token(engine, "acme", "read-only")
    other = create_token(engine, "globex", "admin")
    h = {"Authorization": f"Bearer {admin}"}
    r = client.post(
        "/v1/instances",
        json={
            "id": "acme-1",
            "evolution_base_url": fake_evo.base_url,
            "evolution_api_key": "evo-key",
            "sla_policy": {"first_response": {"minutes": 10, "basis": "calendar"}},
        },
        headers=h,
    )
    assert r.status_code == 201, r.text
    r2 = client.post("/v1/instances", json={"id": "globex-1"}, headers={"Authorization": f"Bearer {other}"})
    assert r2.status_code == 201
    return {
        "client": client,
        "admin": h,
        "agent": {"Authorization": f"Bearer {agent}"},
        "reader": {"Authorization": f"Bearer {reader}"},
        "other": {"Authorization": f"Bearer {other}"},
        "webhook_token": r.json()["webhook_token"],
    }


def _conversation(api: dict, engine, lake, *, phone: str = "5511987654321", minutes_ago: float = 5) -> dict:
    ts = int((datetime.now(UTC) - timedelta(minutes=minutes_ago)).timestamp())
    write_webhooks(lake, [msg("acme-1", f"in-{phone}-{ts}", ts, phone=phone)])
    run_once(lake, engine)
    r = api["client"].get("/v1/conversations", params={"instance_id": "acme-1"}, headers=api["admin"])
    return next(c for c in r.json()["items"] if c["contact_key"] == "+" + phone)


def _team_and_people(api: dict, n: int = 2, capacity: int = 1) -> tuple[str, list[str]]:
    c, h = api["client"], api["admin"]
    team = c.post("/v1/teams", json={"instance_id": "acme-1", "name": "Vendas"}, headers=h).json()["id"]
    people = []
    for i in range(n):
        r = c.post(
            "/v1/attendants",
            json={"instance_id": "acme-1", "name": f"A{i}", "id": f"att{i}", "team_id": team, "capacity": capacity},
            headers=h,
        )
        assert r.status_code == 201, r.text
        people.append(r.json()["id"])
    return team, people


def test_instance_crud_never_returns_the_key(api, engine):
    c, h = api["client"], api["admin"]
    r = c.get("/v1/instances/acme-1", headers=h)
    assert r.status_code == 200
    body = r.json()
    assert body["evolution_api_key_set"] is True
    assert "evo-key" not in r.text and "evolution_api_key_encrypted" not in r.text
    with engine.connect() as conn:
        stored = conn.execute(sa.text("select evolution_api_key_encrypted from instances where id='acme-1'")).scalar()
    assert stored and "evo-key" not in stored
    assert c.patch("/v1/instances/acme-1", json={"display_name": "Loja"}, headers=h).json()["display_name"] == "Loja"
    assert c.patch("/v1/instances/acme-1", json={"display_name": "x"}, headers=api["agent"]).status_code == 403
    assert [i["id"] for i in c.get("/v1/instances", headers=h).json()] == ["acme-1"]
    assert c.post("/v1/instances", json={"id": "acme-1"}, headers=h).status_code == 409
    assert c.delete("/v1/instances/acme-1", headers=h).status_code == 204
    assert c.get("/v1/instances/acme-1", headers=h).json()["active"] is False


def test_teams_and_attendants_crud(api):
    c, h = api["client"], api["admin"]
    team, people = _team_and_people(api)
    assert c.patch(f"/v1/teams/{team}", json={"name": "Suporte"}, headers=h).json()["name"] == "Suporte"
    r = c.patch(f"/v1/attendants/{people[0]}", json={"available": False}, headers=api["agent"])
    assert r.status_code == 200 and r.json()["available"] is False
    assert c.patch(f"/v1/attendants/{people[0]}", json={"capacity": 9}, headers=api["agent"]).status_code == 403
    assert len(c.get("/v1/attendants", params={"team_id": team}, headers=h).json()) == 2
    assert c.delete(f"/v1/attendants/{people[1]}", headers=h).status_code == 204
    assert c.get(f"/v1/attendants/{people[1]}", headers=h).json()["active"] is False
    assert c.delete(f"/v1/teams/{team}", headers=h).status_code == 204
    assert c.get(f"/v1/attendants/{people[0]}", headers=h).json()["team_id"] is None


def test_conversation_actions_and_conflicts(api, engine, lake):
    c, h = api["client"], api["agent"]
    _team, people = _team_and_people(api, capacity=5)
    conv = _conversation(api, engine, lake)
    cid, v = conv["id"], conv["version"]
    r = c.post(f"/v1/conversations/{cid}/assign", json={"attendant_id": people[0], "expected_version": v}, headers=h)
    assert r.status_code == 200, r.text
    assert r.json()["assignee_id"] == people[0] and r.json()["version"] == v + 1
    # A second action based on the old version conflicts instead of overwriting.
    r = c.post(f"/v1/conversations/{cid}/transfer", json={"attendant_id": people[1]}, headers={**h, "If-Match": str(v)})
    assert r.status_code == 409 and "error" in r.json()
    r = c.post(f"/v1/conversations/{cid}/transfer", json={"attendant_id": people[1]}, headers=h)
    assert r.status_code == 200 and r.json()["assignee_id"] == people[1]
    assert c.post(f"/v1/conversations/{cid}/reopen", json={}, headers=h).status_code == 409
    r = c.post(f"/v1/conversations/{cid}/resolve", json={}, headers=h)
    assert r.status_code == 200 and r.json()["status"] == "resolved" and r.json()["assignee_id"] == people[1]
    assert c.post(f"/v1/conversations/{cid}/resolve", json={}, headers=h).status_code == 409
    assert c.post(f"/v1/conversations/{cid}/reopen", json={}, headers=h).json()["status"] == "open"
    assert c.post(f"/v1/conversations/{cid}/resolve", json={}, headers=api["reader"]).status_code == 403
    with engine.connect() as conn:
        kinds = [r.action for r in conn.execute(sa.select(actions.c.action).order_by(actions.c.occurred_at))]
    assert kinds == ["assign", "transfer", "resolve", "reopen"]


def test_concurrent_conflicting_actions_one_wins(api, engine, lake):
    c, h = api["client"], api["agent"]
    _team, people = _team_and_people(api, capacity=5)
    conv = _conversation(api, engine, lake)
    results: list[int] = []
    barrier = threading.Barrier(4)

    def worker(i: int) -> None:
        barrier.wait()
        body = {"attendant_id": people[i % 2], "expected_version": conv["version"]}
        results.append(c.post(f"/v1/conversations/{conv['id']}/assign", json=body, headers=h).status_code)

    threads = [threading.Thread(target=worker, args=(i,)) for i in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert sorted(results) == [200, 409, 409, 409]


def test_list_filters_pagination_detail(api, engine, lake):
    c, h = api["client"], api["admin"]
    _team, people = _team_and_people(api, capacity=5)
    ids = [_conversation(api, engine, lake, phone=f"55119876500{i:02d}", minutes_ago=60 - i)["id"] for i in range(7)]
    c.post(f"/v1/conversations/{ids[0]}/assign", json={"attendant_id": people[0]}, headers=h)
    seen: list[str] = []
    cursor = None
    while True:
        params: dict[str, Any] = {"limit": 3, "instance_id": "acme-1"}
        if cursor:
            params["cursor"] = cursor
        page = c.get("/v1/conversations", params=params, headers=h).json()
        seen += [x["id"] for x in page["items"]]
        cursor = page["next_cursor"]
        if not cursor:
            break
    assert seen == list(reversed(ids))
    assert [
        x["id"] for x in c.get("/v1/conversations", params={"assignee_id": people[0]}, headers=h).json()["items"]
    ] == [ids[0]]
    assert len(c.get("/v1/conversations", params={"unassigned": True}, headers=h).json()["items"]) == 6
    assert len(c.get("/v1/conversations", params={"sla": "breached"}, headers=h).json()["items"]) == 7
    since = (datetime.now(UTC) - timedelta(minutes=56, seconds=30)).isoformat()
    assert len(c.get("/v1/conversations", params={"opened_from": since}, headers=h).json()["items"]) == 3
    assert c.get("/v1/conversations", params={"cursor": "garbage"}, headers=h).status_code == 422
    detail = c.get(f"/v1/conversations/{ids[0]}", params={"limit": 1}, headers=h).json()
    assert detail["messages"]["items"][0]["direction"] == "inbound"
    assert detail["sla"]["state"] == "breached" and detail["sla"]["clocks"]["first_response"]["state"] == "breached"


def test_sla_queue_at_risk_breached(api, engine, lake):
    c, h = api["client"], api["admin"]
    fresh = _conversation(api, engine, lake, phone="5511987650001", minutes_ago=1)  # ok (target 10 min)
    risky = _conversation(api, engine, lake, phone="5511987650002", minutes_ago=9)  # past 80 %
    late = _conversation(api, engine, lake, phone="5511987650003", minutes_ago=30)  # breached
    queue = c.get("/v1/sla/queue", headers=h).json()
    assert [x["id"] for x in queue["items"]] == [late["id"], risky["id"], fresh["id"]]
    assert queue["items"][2]["sla"]["next_breach_at"] is not None
    assert [x["id"] for x in c.get("/v1/sla/at-risk", headers=h).json()["items"]] == [risky["id"]]
    assert [x["id"] for x in c.get("/v1/sla/breached", headers=h).json()["items"]] == [late["id"]]


def test_round_robin_respects_capacity_and_availability(api, engine, lake):
    c, h = api["client"], api["admin"]
    team, people = _team_and_people(api, n=3, capacity=1)
    c.patch(f"/v1/attendants/{people[2]}", json={"available": False}, headers=h)
    convs = [_conversation(api, engine, lake, phone=f"55119876511{i:02d}") for i in range(3)]
    got = []
    for conv in convs:
        r = c.post(f"/v1/conversations/{conv['id']}/auto-assign", json={"team_id": team}, headers=h)
        got.append(r.status_code if r.status_code == 204 else r.json()["assignee_id"])
    assert sorted(got[:2]) == sorted(people[:2]) and got[2] == 204  # both full, the third is unavailable
    with engine.connect() as conn:
        route = conn.execute(sa.select(actions).where(actions.c.action == "route")).first()
    assert route.details["source"] == "rule"


def test_projector_auto_assigns_when_the_instance_asks(api, engine, lake):
    from live.assignment import auto_assign
    from live.projector import Projector

    c, h = api["client"], api["admin"]
    team, people = _team_and_people(api, n=1, capacity=3)
    c.patch("/v1/instances/acme-1", json={"routing": {"auto_assign": True, "default_team_id": team}}, headers=h)
    p = Projector(lake, engine)
    p.on_new_conversations = lambda ids: auto_assign(engine, ids)
    write_webhooks(lake, [msg("acme-1", "auto-1", int(datetime.now(UTC).timestamp()))])
    p.run_once()
    with engine.connect() as conn:
        assert conn.execute(sa.select(conversations.c.assignee_id)).scalar() == people[0]


def test_send_message_idempotent_with_retries_and_attribution(api, engine, lake, fake_evo):
    c, h = api["client"], api["agent"]
    _team, people = _team_and_people(api, capacity=5)
    conv = _conversation(api, engine, lake)
    fake_evo.fail_next = [503, 500]  # retried with backoff, then accepted
    body = {"text": "Seu pedido sai hoje", "attendant_id": people[0]}
    r = c.post(f"/v1/conversations/{conv['id']}/messages", json=body, headers={**h, "Idempotency-Key": "k1"})
    assert r.status_code == 201, r.text
    mid = r.json()["message_id"]
    again = c.post(f"/v1/conversations/{conv['id']}/messages", json=body, headers={**h, "Idempotency-Key": "k1"})
    assert again.status_code == 200 and again.json() == {**r.json(), "replayed": True}
    assert len(fake_evo.sent) == 1 and fake_evo.sent[0]["number"] == "5511987654321"
    changed = {**body, "text": "other"}
    assert (
        c.post(
            f"/v1/conversations/{conv['id']}/messages", json=changed, headers={**h, "Idempotency-Key": "k1"}
        ).status_code
        == 422
    )
    # The webhooks Evolution posts back land in bronze; the projector attributes the response.
    write_webhooks(lake, fake_evo.outbox)
    run_once(lake, engine)
    detail = c.get(f"/v1/conversations/{conv['id']}", headers=h).json()
    assert detail["first_responder_id"] == people[0]
    sent = next(m for m in detail["messages"]["items"] if m["message_id"] == mid)
    assert sent["sender_attendant_id"] == people[0] and sent["status"] == "server_ack"
    with engine.connect() as conn:
        rows = conn.execute(sa.select(actions).where(actions.c.action == "message_sent")).all()
    assert len(rows) == 1 and rows[0].details == {"message_id": mid, "automated": False, "conversation_id": conv["id"]}


def test_send_reports_evolution_errors_as_502(api, engine, lake, fake_evo):
    c, h = api["client"], api["agent"]
    conv = _conversation(api, engine, lake, phone="5511987654000")
    fake_evo.fail_next = [500, 500, 500]
    r = c.post(f"/v1/conversations/{conv['id']}/messages", json={"text": "x"}, headers={**h, "Idempotency-Key": "k2"})
    assert r.status_code == 502 and "boom" in r.json()["error"]
    # The failed key can be retried; it sends once.
    r = c.post(f"/v1/conversations/{conv['id']}/messages", json={"text": "x"}, headers={**h, "Idempotency-Key": "k2"})
    assert r.status_code == 201 and len(fake_evo.sent) == 1
    fake_evo.api_key = "rotated"
    r = c.post(f"/v1/conversations/{conv['id']}/messages", json={"text": "y"}, headers=h)
    assert r.status_code == 502 and "401" in r.json()["error"]
    assert fake_evo.requests == 5  # 3 attempts, 1 success, 1 refusal: 4xx is never retried


def test_webhook_setup_posts_to_evolution(api, fake_evo):
    c, h = api["client"], api["admin"]
    r = c.post("/v1/instances/acme-1/webhook", json={"url": "http://127.0.0.1:9/webhooks/evolution"}, headers=h)
    assert r.status_code == 200, r.text
    token = r.json()["webhook_token"]
    hook = fake_evo.webhooks["acme-1"]
    assert hook["url"] == "http://127.0.0.1:9/webhooks/evolution" and hook["headers"] == {"apikey": token}
    assert "MESSAGES_UPSERT" in hook["events"]
    r = c.post("/v1/instances/acme-1/webhook", json={"url": "http://x/w", "token": token}, headers=h)
    assert r.status_code == 200 and r.json()["webhook_token"] is None
    assert (
        c.post("/v1/instances/acme-1/webhook", json={"url": "http://x/w", "token": "wrong"}, headers=h).status_code
        == 422
    )


def test_every_endpoint_answers_404_for_another_tenants_ids(api, engine, lake):
    c = api["client"]
    team, people = _team_and_people(api, capacity=5)
    conv = _conversation(api, engine, lake)
    o = api["other"]
    calls = [
        ("get", "/v1/instances/acme-1", None),
        ("patch", "/v1/instances/acme-1", {"display_name": "x"}),
        ("delete", "/v1/instances/acme-1", None),
        ("post", "/v1/instances/acme-1/webhook", {"url": "http://x/w"}),
        ("get", f"/v1/teams/{team}", None),
        ("patch", f"/v1/teams/{team}", {"name": "x"}),
        ("delete", f"/v1/teams/{team}", None),
        ("post", "/v1/teams", {"instance_id": "acme-1", "name": "x"}),
        ("get", f"/v1/attendants/{people[0]}", None),
        ("patch", f"/v1/attendants/{people[0]}", {"available": False}),
        ("delete", f"/v1/attendants/{people[0]}", None),
        ("post", "/v1/attendants", {"instance_id": "acme-1", "name": "x"}),
        ("get", "/v1/teams?instance_id=acme-1", None),
        ("get", "/v1/attendants?instance_id=acme-1", None),
        ("get", "/v1/conversations?instance_id=acme-1", None),
        ("get", f"/v1/conversations/{conv['id']}", None),
        ("get", f"/v1/conversations/{conv['id']}/messages", None),
        ("post", f"/v1/conversations/{conv['id']}/assign", {"attendant_id": people[0]}),
        ("post", f"/v1/conversations/{conv['id']}/transfer", {"attendant_id": people[0]}),
        ("post", f"/v1/conversations/{conv['id']}/unassign", {}),
        ("post", f"/v1/conversations/{conv['id']}/resolve", {}),
        ("post", f"/v1/conversations/{conv['id']}/reopen", {}),
        ("post", f"/v1/conversations/{conv['id']}/auto-assign", {}),
        ("post", f"/v1/conversations/{conv['id']}/messages", {"text": "x"}),
        ("get", "/v1/sla/queue?instance_id=acme-1", None),
        ("get", "/v1/sla/at-risk?instance_id=acme-1", None),
        ("get", "/v1/sla/breached?instance_id=acme-1", None),
    ]
    paths = {
        r.path
        for r in c.app.routes
        if getattr(r, "path", "").startswith(
            ("/v1/instances", "/v1/teams", "/v1/attendants", "/v1/sla", "/v1/conversations/{conversation_id}")
        )
    }
    covered = {p.split("?")[0] for _m, p, _b in calls}
    template = {
        p.replace(team, "{team_id}")
        .replace(people[0], "{attendant_id}")
        .replace(conv["id"], "{conversation_id}")
        .replace("acme-1", "{instance_id}")
        for p in covered
    }
    assert paths - {"/v1/instances", "/v1/teams", "/v1/attendants"} <= template
    for method, path, body in calls:
        r = c.request(method, path, json=body, headers=o)
        assert r.status_code == 404, (method, path, r.status_code, r.text)
        assert "error" in r.json()
    # The other tenant's own lists never show acme's rows.
    assert c.get("/v1/conversations", headers=o).json()["items"] == []
    assert c.get("/v1/sla/queue", headers=o).json()["items"] == []
    assert [i["id"] for i in c.get("/v1/instances", headers=o).json()] == ["globex-1"]
    # …and nothing changed for acme.
    assert c.get(f"/v1/conversations/{conv['id']}", headers=api["admin"]).json()["version"] == conv["version"]
