"""The console's conversation view over HTTP (SQLite and PostgreSQL): the transcript as WhatsApp shows
it (direction, the instance's time zone, ticks, edits with history, deletions, reactions, media,
calls), another account's conversation answering 404, cookie writes needing the CSRF header, the
409 naming who acted first, and message changes reaching the live feed (migration 0014)."""

from __future__ import annotations

import re
from datetime import UTC, datetime, timedelta

import pytest
import sqlalchemy as sa
from fastapi.testclient import TestClient

from api.app import create_app
from live.projector import run_once
from silver.pipeline import build_silver
from tests.chat_support import PHONE, build, login, page_config
from tests.ops_helpers import write_webhooks
from tests.test_silver_scenarios import ack, edit, envelope, message, reaction, revoke

JID = f"{PHONE}@s.whatsapp.net"
T0 = datetime(2026, 3, 2, 15, 4, 5, tzinfo=UTC)  # 11:04 in Manaus (UTC-4), 12:04 in São Paulo


@pytest.fixture
def app(engine, settings):
    application = create_app(settings)
    application.state.engine = engine
    return application


@pytest.fixture
def world(app, engine):
    with TestClient(app) as admin:
        return build(admin, engine)


def _call(at: datetime, status: str, call_id: str = "CALL1") -> dict:
    return envelope(
        "call",
        {
            "chatId": JID,
            "from": JID,
            "id": call_id,
            "date": at.isoformat().replace("+00:00", "Z"),
            "offline": False,
            "status": status,
            "isVideo": False,
            "isGroup": False,
        },
        instance="acme-1",
    )


def _image(mid: str, at: datetime) -> dict:
    body = message(mid, JID, at, instance="acme-1")
    body["data"]["message"] = {"imageMessage": {"mimetype": "image/jpeg", "caption": "foto da caixa"}}
    body["data"]["messageType"] = "imageMessage"
    return body


def _for(env: dict) -> dict:
    env["instance"] = "acme-1"
    return env


def _conversation_id(client: TestClient, token: str) -> str:
    items = client.get("/v1/conversations", headers={"Authorization": f"Bearer {token}"}).json()["items"]
    assert len(items) == 1
    return items[0]["id"]


def test_transcript_renders_as_whatsapp_shows_it(app, world, engine, lake, settings) -> None:
    s = timedelta(seconds=1)
    traffic = [
        message("in-1", JID, T0, instance="acme-1", text="Minha caixa chegou amassada"),
        message("out-1", JID, T0 + 60 * s, instance="acme-1", from_me=True, text="Sinto muito!", event="send.message"),
        _for(ack("out-1", JID, "READ", instance="acme-1")),
        message("in-2", JID, T0 + 90 * s, instance="acme-1", text="Pedido 123"),
        _for(edit("in-2", JID, T0 + 100 * s, "Pedido 1234")),
        message("in-3", JID, T0 + 110 * s, instance="acme-1", text="mensagem errada"),
        _for(revoke("in-3", JID, T0 + 115 * s)),
        _for(reaction("r-1", "out-1", JID, T0 + 120 * s, "👍")),
        _image("img-1", T0 + 130 * s),
        _call(T0 + 140 * s, "offer"),
        _call(T0 + 170 * s, "timeout"),
    ]
    write_webhooks(lake, traffic, received_at=T0 + 200 * s)
    run_once(lake, engine)
    build_silver(lake, settings=settings)
    with TestClient(app) as client:
        conv_id = _conversation_id(client, world.acme_token)
        login(client, "ana")
        r = client.get(f"/app/console/conversations/{conv_id}")
        assert r.status_code == 200, r.text[:500]
        html = r.text

    def bubble(mid: str) -> str:
        found = re.search(rf'\n  <li class="bubble[^"]*" data-message-id="{mid}".*?\n  </li>', html, re.S)
        assert found, f"no bubble for {mid}"
        return found.group(0)

    # Direction and the instance's time zone (Manaus), never UTC or São Paulo.
    assert 'class="bubble in"' in bubble("in-1") and "11:04" in bubble("in-1")
    assert "15:04" not in html and "12:04" not in html
    assert "America/Manaus" in html
    assert 'class="bubble out"' in bubble("out-1") and "11:05" in bubble("out-1")
    # Ticks follow the status; inbound messages have none.
    assert 'data-tick="read"' in bubble("out-1") and "data-tick" not in bubble("in-1")
    # The edit: current text, flagged, with its history (the original and the edit with its time).
    edited = bubble("in-2")
    assert "Pedido 1234" in edited and 'class="edits"' in edited
    assert "</span> Pedido 123</li>" in edited  # the original
    assert "11:05" in edited.split('class="edits"')[1]  # the edit's own time (15:05:45 UTC)
    # The deletion: marked, its text gone.
    deleted = bubble("in-3")
    assert "revoked" in deleted and "mensagem errada" not in html
    # The reaction sits on its target; the image is a typed placeholder with its caption.
    assert "👍" in bubble("out-1")
    image = bubble("img-1")
    assert 'data-media="image"' in image and "foto da caixa" in image
    # The missed call, in place and in local time.
    call = re.search(r'<li class="call".*?</li>', html, re.S)
    assert call and 'data-outcome="missed"' in call.group(0) and "11:06" in call.group(0)
    # In time order.
    order = [html.index(f'data-message-id="{m}"') for m in ("in-1", "out-1", "in-2", "in-3", "img-1")]
    assert order == sorted(order) and html.index('class="call"') > order[-1]


def test_english_page_and_clocks(app, world, engine, lake) -> None:
    now = datetime.now(UTC).replace(microsecond=0)
    write_webhooks(lake, [message("in-1", JID, now - timedelta(minutes=3), instance="acme-1")], received_at=now)
    run_once(lake, engine)
    with TestClient(app) as client:
        conv_id = _conversation_id(client, world.acme_token)
        login(client, "ana")
        client.cookies.set("beazap_lang", "en")
        html = client.get(f"/app/console/conversations/{conv_id}").text
    assert "Unassigned" in html and "Take" in html and "First response" in html
    wait = re.search(r'id="clock-wait">([^<]+)<', html).group(1)
    assert wait.startswith("3 min")  # waiting since the customer wrote, 3 minutes ago
    assert re.search(r'id="clock-sla" data-sla="(ok|at_risk|breached)"', html)


def test_other_account_answers_404_on_page_and_api(app, world, engine, lake) -> None:
    now = datetime.now(UTC)
    write_webhooks(lake, [message("in-1", JID, now - timedelta(minutes=1), instance="acme-1")], received_at=now)
    run_once(lake, engine)
    with TestClient(app) as beta, TestClient(app) as ana:
        conv_id = _conversation_id(beta, world.acme_token)
        login(beta, "beta")
        page = beta.get(f"/app/console/conversations/{conv_id}")
        missing = beta.get("/app/console/conversations/no-such-conversation")
        assert page.status_code == missing.status_code == 404
        assert PHONE not in page.text
        # Word for word the page of an id that exists nowhere: nothing confirms it exists.
        assert page.text.replace(conv_id, "ID") == missing.text.replace("no-such-conversation", "ID")
        csrf = re.search(r'name="csrf" value="([^"]+)"', page.text).group(1)
        for action in ("assign", "resolve"):
            r = beta.post(
                f"/v1/conversations/{conv_id}/{action}",
                json={"attendant_id": "ana"},
                headers={"X-CSRF-Token": csrf, "If-Match": "1"},
            )
            assert r.status_code == 404 and r.json()["error"].startswith("conversation not found")
        r = beta.post(f"/v1/conversations/{conv_id}/messages", json={"text": "oi"}, headers={"X-CSRF-Token": csrf})
        assert r.status_code == 404
        assert beta.get(f"/v1/conversations/{conv_id}/live").status_code == 404
        # acme's own attendant reaches it.
        login(ana, "ana")
        assert ana.get(f"/app/console/conversations/{conv_id}").status_code == 200


def test_cookie_writes_need_the_session_csrf_header(app, world, engine, lake) -> None:
    now = datetime.now(UTC)
    write_webhooks(lake, [message("in-1", JID, now - timedelta(minutes=1), instance="acme-1")], received_at=now)
    run_once(lake, engine)
    with TestClient(app) as client:
        conv_id = _conversation_id(client, world.acme_token)
        login(client, "ana")
        cfg = page_config(client.get(f"/app/console/conversations/{conv_id}").text)
        url = f"/v1/conversations/{conv_id}/assign"
        body = {"attendant_id": "ana", "actor_id": "ana"}
        # What a forged cross-site request can send: the cookie rides along, no custom header.
        assert client.post(url, json=body).status_code == 401
        assert client.post(url, data={"attendant_id": "ana"}).status_code == 401
        assert client.post(url, json=body, headers={"X-CSRF-Token": "forged"}).status_code == 403
        assert client.post(url, json=body, headers={"X-CSRF-Token": "é".encode("latin-1")}).status_code == 403
        r = client.post(url, json=body, headers={"X-CSRF-Token": cfg["csrf"], "If-Match": str(cfg["version"])})
        assert r.status_code == 200 and r.json()["assignee_id"] == "ana"
        # An attendant's session reads the console but still not other people's figures.
        assert client.get("/v1/metrics/overview", params={"attendant_id": "bruno"}).status_code == 403


def test_conflict_names_who_acted_first_and_when(app, world, engine, lake) -> None:
    now = datetime.now(UTC)
    write_webhooks(lake, [message("in-1", JID, now - timedelta(minutes=1), instance="acme-1")], received_at=now)
    run_once(lake, engine)
    with TestClient(app) as ana, TestClient(app) as bruno:
        conv_id = _conversation_id(ana, world.acme_token)
        login(ana, "ana")
        login(bruno, "bruno")
        seen_a = page_config(ana.get(f"/app/console/conversations/{conv_id}").text)
        seen_b = page_config(bruno.get(f"/app/console/conversations/{conv_id}").text)
        assert seen_a["version"] == seen_b["version"]
        r = ana.post(
            f"/v1/conversations/{conv_id}/resolve",
            json={"actor_id": "bruno"},  # a session acts as its own user, whatever the body claims
            headers={"X-CSRF-Token": seen_a["csrf"], "If-Match": str(seen_a["version"])},
        )
        assert r.status_code == 200
        late = bruno.post(
            f"/v1/conversations/{conv_id}/assign",
            json={"actor_id": "bruno", "attendant_id": "bruno"},
            headers={"X-CSRF-Token": seen_b["csrf"], "If-Match": str(seen_b["version"])},
        )
    assert late.status_code == 409
    body = late.json()
    assert "expected" in body["error"]
    current = body["current"]
    assert current["action"] == "resolve" and current["actor_id"] == "ana" and current["actor_name"] == "Ana"
    assert current["status"] == "resolved" and current["version"] == seen_a["version"] + 1
    at = datetime.fromisoformat(current["at"])
    assert abs((datetime.now(UTC) - at).total_seconds()) < 60


def test_message_changes_reach_the_live_feed(engine) -> None:
    from storage import migrate
    from storage.tables import live_changes, messages

    def changes() -> list[str]:
        with engine.connect() as conn:
            return conn.execute(sa.select(live_changes.c.conversation_id).order_by(live_changes.c.id)).scalars().all()

    now = datetime.now(UTC)
    with engine.begin() as conn:
        conn.execute(sa.delete(live_changes))
        conn.execute(
            sa.insert(messages),
            [
                {
                    "instance_id": "i",
                    "message_id": "m1",
                    "timestamp": now,
                    "conversation_id": "cv-1",
                    "direction": "outbound",
                    "kind": "text",
                    "text": "oi",
                    "status": "server_ack",
                },
                {
                    "instance_id": "i",
                    "message_id": "m2",
                    "timestamp": now,
                    "conversation_id": None,
                    "direction": "inbound",
                    "kind": "text",
                    "text": "x",
                    "status": None,
                },
            ],
        )
    assert changes() == []  # new messages already change their conversation; nothing extra
    for values in ({"status": "read"}, {"text": "olá"}, {"revoked": True}, {"status": "read"}):
        with engine.begin() as conn:
            conn.execute(sa.update(messages).where(messages.c.message_id == "m1").values(**values))
    with engine.begin() as conn:
        conn.execute(sa.update(messages).where(messages.c.message_id == "m2").values(status="read"))
        conn.execute(sa.update(messages).where(messages.c.message_id == "m1").values(automated=True))
    assert changes() == ["cv-1", "cv-1", "cv-1"]  # ack, edit, revoke; a repeated status or a stray update: none

    migrate.downgrade(engine, "0013_console")
    with engine.begin() as conn:
        conn.execute(sa.update(messages).where(messages.c.message_id == "m1").values(status="played"))
    assert len(changes()) == 3
    migrate.upgrade(engine)
    assert migrate.drift(engine) == []
    with engine.begin() as conn:
        conn.execute(sa.update(messages).where(messages.c.message_id == "m1").values(status="error"))
    assert changes() == ["cv-1"] * 4
