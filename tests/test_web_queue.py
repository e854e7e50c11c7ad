"""The live queue page over HTTP (no browser), on SQLite and PostgreSQL: login redirect, filters, the
attendant's own + unassigned view, phone masking by role, tenant scope (404, never confirming ids),
notifications (own only, ack with CSRF) and the presence heartbeat."""

from __future__ import annotations

import re
from datetime import UTC, datetime, timedelta

import pytest
from fastapi.testclient import TestClient

from api.app import create_app
from api.auth import contact_label, may_see_phone
from live import alerts
from tests.queue_world import add_conversation, add_many, login, seed, set_policy


@pytest.fixture
def app(engine, settings):
    seed(engine)
    application = create_app(settings)
    application.state.engine = engine
    return application


def _ids(html: str, table: str) -> list[str]:
    part = html.split(f'id="{table}"', 1)[1].split("</table>", 1)[0]
    return re.findall(r'<tr id="q-([^"]+)"', part)


def _world(engine) -> None:
    now = datetime.now(UTC)
    add_conversation(engine, "c-old", opened=now - timedelta(minutes=9), phone="5511911110001")
    add_conversation(engine, "c-ana", opened=now - timedelta(minutes=5), assignee="ana", team="qa-1-sales")
    add_conversation(engine, "c-bob", opened=now - timedelta(minutes=4), assignee="bob", team="qa-1-sales")
    add_conversation(engine, "c-new", opened=now - timedelta(minutes=1), phone="5511911110004")
    add_conversation(engine, "c-qa2", instance="qa-2", opened=now - timedelta(minutes=2))
    add_conversation(engine, "c-done", status="resolved")
    add_conversation(engine, "c-b", instance="qb-1", phone="5521922220001")


def test_page_needs_login_and_json_helpers_answer_401(app) -> None:
    client = TestClient(app)
    r = client.get("/app/queue?instance_id=qa-1", follow_redirects=False)
    assert r.status_code == 303 and r.headers["location"] == "/app/login?next=/app/queue%3Finstance_id%3Dqa-1"
    for path in ("/app/queue/rows", "/app/queue/notifications", "/app/queue/stream"):
        r = client.get(path)
        assert r.status_code == 401 and r.json()["error"]
    assert client.post("/app/queue/heartbeat", json={}).status_code == 401


def test_supervisor_sees_the_account_oldest_first_and_filters(app, engine) -> None:
    _world(engine)
    client = login(TestClient(app), "supervisor")
    page = client.get("/app/queue")
    assert page.status_code == 200
    assert _ids(page.text, "queue-waiting") == ["c-old", "c-qa2", "c-new"]  # oldest first
    assert _ids(page.text, "queue-assigned") == ["c-ana", "c-bob"]
    assert "c-done" not in page.text and "c-b" not in _ids(page.text, "queue-waiting")
    assert "+5511911110001" in page.text  # a supervisor reads the number
    assert re.search(r'data-stream="/app/queue/stream\?after=\d+"', page.text)
    assert 'href="/app/console/conversations/c-old"' in page.text
    assert ">Ana<" in page.text and ">Vendas<" in page.text  # names, not ids

    page = client.get("/app/queue", params={"instance_id": "qa-2"})
    assert _ids(page.text, "queue-waiting") == ["c-qa2"] and _ids(page.text, "queue-assigned") == []
    assert re.search(r'data-stream="/app/queue/stream\?instance_id=qa-2&amp;after=\d+"', page.text)
    page = client.get("/app/queue", params={"team_id": "qa-1-sales"})
    assert _ids(page.text, "queue-waiting") == [] and _ids(page.text, "queue-assigned") == ["c-ana", "c-bob"]

    rows = client.get("/app/queue/rows", params={"instance_id": "qa-1"}).json()
    assert [r["id"] for r in rows["items"]] == ["c-old", "c-ana", "c-bob", "c-new"]
    first = rows["items"][0]
    assert first["kind"] == "waiting" and first["sla"]["state"] in ("ok", "at_risk", "breached")
    api = client.get("/v1/conversations", params={"status": "open", "instance_id": "qa-1"}).json()["items"]
    by_id = {c["id"]: c for c in api}
    for row in rows["items"]:  # the same data as the API
        assert row["sla"]["state"] == by_id[row["id"]]["sla"]["state"]
        assert row["conversation"]["version"] == by_id[row["id"]]["version"]
    r = client.get("/app/queue/stream", params={"after": "x"})
    assert r.status_code == 422 and "Last-Event-ID" in r.json()["error"]
    refreshed = client.get("/app/queue/rows", params=[("id", "c-new"), ("id", "c-done"), ("id", "c-b")]).json()
    assert [r["id"] for r in refreshed["items"]] == ["c-new"]  # closed and other-account ids: absent


def test_other_accounts_ids_answer_404_and_show_nothing(app, engine) -> None:
    _world(engine)
    client = login(TestClient(app), "supervisor_b")
    page = client.get("/app/queue")
    assert page.status_code == 200
    assert _ids(page.text, "queue-waiting") == ["c-b"] and "c-old" not in page.text
    for params in ({"instance_id": "qa-1"}, {"team_id": "qa-1-sales"}):
        r = client.get("/app/queue", params=params)
        assert r.status_code == 404 and "c-old" not in r.text
        assert client.get("/app/queue/rows", params=params).status_code == 404
        assert client.get("/v1/live/stream", params=params).status_code == 404
        assert client.get("/app/queue/stream", params=params).status_code == 404
    r = client.get("/app/queue/rows", params=[("id", "c-old"), ("id", "c-ana")])
    assert r.status_code == 200 and r.json()["items"] == []
    # an unknown id answers exactly like another account's
    missing = client.get("/app/queue", params={"instance_id": "no-such"})
    assert missing.status_code == 404


def test_attendant_sees_own_and_unassigned_masked(app, engine) -> None:
    _world(engine)
    client = login(TestClient(app), "attendant")
    page = client.get("/app/queue", params={"instance_id": "qa-2", "team_id": "x"})  # ignored for attendants
    assert page.status_code == 200
    assert _ids(page.text, "queue-waiting") == ["c-old", "c-new"]  # qa-2 is not ana's instance
    assert _ids(page.text, "queue-assigned") == ["c-ana"]
    assert "c-bob" not in page.text
    assert "5511911110001" not in page.text and "***01" in page.text  # masked with the log rule
    assert re.search(r'data-stream="/app/queue/stream\?after=\d+"', page.text)
    assert 'data-attendant="ana"' in page.text
    rows = client.get("/app/queue/rows").json()["items"]
    assert {r["id"] for r in rows} == {"c-old", "c-ana", "c-new"}
    assert all("5511" not in r["conversation"]["contact"] for r in rows)
    assert client.get("/app/queue/rows", params={"id": "c-bob"}).json()["items"] == []
    # the console API itself stays closed to an attendant's session
    assert client.get("/v1/live/stream", params={"attendant_id": "ana"}).status_code == 403


def test_masking_rule_is_the_log_rule() -> None:
    assert may_see_phone("supervisor") and may_see_phone("admin") and not may_see_phone("attendant")
    assert contact_label("+5511987654321", "attendant") == "***21"
    assert contact_label("+5511987654321", "supervisor") == "+5511987654321"
    assert contact_label("123456789012345@lid", "attendant").startswith("***")


def test_notifications_are_the_users_own_and_ack_needs_csrf(app, engine) -> None:
    set_policy(engine, "qa-1", {"first_response": {"minutes": 10, "basis": "calendar"}, "resolution": None})
    t0 = datetime.now(UTC) - timedelta(minutes=9)
    add_conversation(engine, "c-late", opened=t0, assignee="ana")
    add_conversation(engine, "c-late-bob", opened=t0, assignee="bob")
    assert len(alerts.scan(engine, datetime.now(UTC))) == 2
    ana = login(TestClient(app), "attendant")
    sup = login(TestClient(app), "supervisor")
    other = login(TestClient(app), "supervisor_b")
    mine = ana.get("/app/queue/notifications").json()["items"]
    assert [(n["conversation_id"], n["recipient"], n["state"]) for n in mine] == [("c-late", "ana", "at_risk")]
    assert {n["conversation_id"] for n in sup.get("/app/queue/notifications").json()["items"]} == {
        "c-late",
        "c-late-bob",
    }
    assert other.get("/app/queue/notifications").json()["items"] == []
    bobs = next(n for n in sup.get("/v1/notifications", params={"recipient": "bob"}).json())

    csrf = re.search(r'data-csrf="([^"]+)"', ana.get("/app/queue").text).group(1)
    assert ana.post(f"/app/queue/notifications/{mine[0]['id']}/ack").status_code == 403
    assert ana.post(f"/app/queue/notifications/{bobs['id']}/ack", headers={"X-CSRF-Token": csrf}).status_code == 404
    other_csrf = re.search(r'data-csrf="([^"]+)"', other.get("/app/queue").text).group(1)
    r = other.post(f"/app/queue/notifications/{mine[0]['id']}/ack", headers={"X-CSRF-Token": other_csrf})
    assert r.status_code == 404
    assert ana.post(f"/app/queue/notifications/{mine[0]['id']}/ack", headers={"X-CSRF-Token": csrf}).status_code == 204
    assert ana.get("/app/queue/notifications").json()["items"] == []
    assert len(sup.get("/app/queue/notifications").json()["items"]) == 2  # the supervisors' own copies stay


def test_heartbeat_marks_the_attendant_online_then_away(app) -> None:
    ana = login(TestClient(app), "attendant")
    sup = login(TestClient(app), "supervisor")
    csrf = re.search(r'data-csrf="([^"]+)"', ana.get("/app/queue").text).group(1)
    h = {"X-CSRF-Token": csrf}
    assert ana.post("/app/queue/heartbeat", json={}).status_code == 403
    assert ana.post("/app/queue/heartbeat", json={"away": "yes"}, headers=h).status_code == 422
    assert ana.post("/app/queue/heartbeat", content=b"{", headers=h).status_code == 422
    r = ana.post("/app/queue/heartbeat", json={"away": False}, headers=h)
    assert r.status_code == 200 and r.json() == {"attendant_id": "ana", "state": "online"}

    def state() -> str:
        return {p["attendant_id"]: p["state"] for p in sup.get("/v1/presence").json()}["ana"]

    assert state() == "online"
    assert ana.post("/app/queue/heartbeat", json={"away": True}, headers=h).json()["state"] == "away"
    assert state() == "away"
    sup_csrf = re.search(r'data-csrf="([^"]+)"', sup.get("/app/queue").text).group(1)
    assert sup.post("/app/queue/heartbeat", json={}, headers={"X-CSRF-Token": sup_csrf}).status_code == 404


def test_queue_in_both_languages(app, engine) -> None:
    _world(engine)
    client = login(TestClient(app), "supervisor")
    pt = client.get("/app/queue").text
    assert "Fila ao vivo" in pt and "Aguardando atendimento" in pt and "Conectando" in pt
    client.cookies.set("beazap_lang", "en")
    en = client.get("/app/queue").text
    assert "Live queue" in en and "Waiting for an attendant" in en and 'data-label-reconnecting="Reconnecting…"' in en


def test_view_frames_mask_and_send_gone_for_rows_leaving_the_view() -> None:
    from types import SimpleNamespace

    import orjson

    from api.web.console_queue import QueueFilter, view_frames

    def frame(event_id: int, kind: str, assignee: str | None, team: str | None = None) -> bytes:
        conv = {"id": f"c{event_id}", "instance_id": "qa-1", "contact_key": "+5511987654321", "version": 3,
                "assignee_id": assignee, "team_id": team}  # fmt: skip
        body = {"id": event_id, "kind": kind, "conversation": conv, "sla": {"state": "ok"}}
        return b"id: %d\nevent: conversation\ndata: %s\n\n" % (event_id, orjson.dumps(body))

    def events(chunk: bytes) -> list[dict]:
        return [orjson.loads(line[6:]) for line in chunk.split(b"\n") if line.startswith(b"data: ")]

    user = SimpleNamespace(role="attendant", attendant_id="ana")
    ana = QueueFilter(SimpleNamespace(user=user), "qa-2", "t")  # type: ignore[arg-type]
    out = events(
        view_frames(
            frame(1, "assigned", "ana") + frame(2, "waiting", None) + frame(3, "assigned", "bob"), ana, "attendant"
        )
    )
    assert [(e["id"], e["kind"]) for e in out] == [(1, "assigned"), (2, "waiting"), (3, "gone")]
    assert out[0]["conversation"]["contact"] == "***21" and "contact_key" not in out[0]["conversation"]
    assert out[2] == {"id": 3, "kind": "gone", "conversation": {"id": "c3", "version": 3}}  # nothing of bob's
    sup = QueueFilter(SimpleNamespace(user=SimpleNamespace(role="supervisor", attendant_id=None)), None, "t1")  # type: ignore[arg-type]
    out = events(view_frames(frame(4, "assigned", "bob", "t1") + frame(5, "assigned", "bob", "t2"), sup, "supervisor"))
    assert [e["kind"] for e in out] == ["assigned", "gone"] and out[0]["conversation"]["contact"] == "+5511987654321"
    assert view_frames(b": keepalive\n\n", sup, "supervisor") == b": keepalive\n\n"


def test_pages_of_a_long_queue_cover_every_open_conversation_once(app, engine) -> None:
    from api.web.console_queue import PAGE_ROWS

    add_many(engine, PAGE_ROWS + 300)  # a third each: ana's, bob's, unassigned
    for who, expected in (("supervisor", PAGE_ROWS + 300), ("attendant", 2 * (PAGE_ROWS + 300) // 3)):
        client = login(TestClient(app), who)
        page = client.get("/app/queue").text
        first = _ids(page, "queue-waiting") + _ids(page, "queue-assigned")
        assert len(first) == PAGE_ROWS
        cursor = re.search(r'id="queue-older" data-cursor="([^"]+)"', page).group(1)
        seen = list(first)
        while cursor:
            body = client.get("/app/queue/rows", params={"cursor": cursor}).json()
            seen += [r["id"] for r in body["items"]]
            cursor = body["next_cursor"]
        assert len(seen) == len(set(seen)) == expected, who
        if who == "attendant":
            assert [r for r in seen if int(r[-5:]) % 3 == 1] == []  # bob's never
    assert client.get("/app/queue/rows", params={"cursor": "not-a-cursor"}).status_code == 422


def test_attendant_session_works_on_own_and_unassigned_only_with_contacts_masked(app, engine) -> None:
    _world(engine)
    client = login(TestClient(app), "attendant")
    csrf = {"X-CSRF-Token": re.search(r'data-csrf="([^"]+)"', client.get("/app/queue").text).group(1)}
    listed = client.get("/v1/conversations", params={"status": "open"})
    assert listed.status_code == 200
    assert {r["id"] for r in listed.json()["items"]} == {"c-old", "c-ana", "c-new"}  # own instance, own + unassigned
    assert "5511" not in listed.text  # contact_key and chat_jid masked
    assert all(r["contact_key"].startswith("***") for r in listed.json()["items"])
    one = client.get("/v1/conversations/c-old")
    assert one.status_code == 200 and "5511" not in one.text
    # a colleague's conversation and another instance of the account are not the attendant's (404)
    assert client.get("/v1/conversations/c-bob").status_code == 404
    assert client.get("/v1/conversations/c-bob/messages").status_code == 404
    assert client.get("/v1/conversations", params={"instance_id": "qa-2"}).status_code == 404
    assert client.post("/v1/conversations/c-bob/resolve", json={}, headers=csrf).status_code == 404
    assert client.post("/v1/conversations/c-bob/messages", json={"text": "oi"}, headers=csrf).status_code == 404
    # quick replies are the account's: attendants read them, supervisors and admins write them
    assert client.get("/v1/quick-replies").status_code == 200
    r = client.post("/v1/quick-replies", json={"shortcut": "x", "title": "x", "body": "x"}, headers=csrf)
    assert r.status_code == 403
    # the attendant acts on their own conversation
    assert client.post("/v1/conversations/c-ana/resolve", json={}, headers=csrf).status_code == 200
    supervisor = login(TestClient(app), "supervisor")
    assert any("5511" in r["contact_key"] for r in supervisor.get("/v1/conversations").json()["items"])


def test_evolution_refusal_reason_is_shown_with_phones_masked() -> None:
    import httpx

    from live.evolution import _reason

    body = {"response": {"message": [{"jid": "5511987654321@s.whatsapp.net", "exists": False}]}}
    reason = _reason(httpx.Response(400, json=body))
    assert "5511987654321" not in reason and "exists" in reason
