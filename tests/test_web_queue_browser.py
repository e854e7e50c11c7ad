"""The live queue page in a real browser (Playwright + Debian's Chromium), on SQLite: the real receiver,
the real projector and the SLA alert worker run beside the server as ``beazap worker`` would.

- a webhook posted to the receiver shows up as a row in an open page within 2 s;
- a conversation crossing its at-risk threshold gives exactly one alert on the page and one POST to
  an outbound-webhook receiver on loopback;
- the page reconnects after the server stops and starts again on the same port, and catches up (a
  change made while it was down shows, no duplicate rows);
- an attendant sees only their own and unassigned conversations, live; another account's user never
  sees account A's queue through the page or its stream.
"""

from __future__ import annotations

import os
import threading
import time
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
import pytest
import sqlalchemy as sa
import uvicorn

from api.app import create_app
from core.settings import Settings
from live import alerts
from live.projector import Projector
from storage import migrate
from storage.db import make_engine
from storage.lake import Lake
from storage.tables import conversations
from tests.browser import browser, free_port, screenshot
from tests.console_support import WebhookReceiver, poll
from tests.ops_helpers import msg
from tests.queue_world import PASSWORD, USERS, add_conversation, seed, set_policy

pytestmark = pytest.mark.slow
SECRET = "queue-alert-secret-0123"


class Server:
    """The app under uvicorn on a fixed loopback port; stop() and start() again = a server restart."""

    def __init__(self, settings: Settings, engine: sa.Engine, port: int) -> None:
        self.settings, self.engine, self.port = settings, engine, port
        self.base = f"http://127.0.0.1:{port}"
        self.server: uvicorn.Server | None = None
        self.thread: threading.Thread | None = None

    def start(self) -> None:
        app = create_app(self.settings)
        app.state.engine = self.engine
        self.server = uvicorn.Server(
            uvicorn.Config(
                app,
                host="127.0.0.1",
                port=self.port,
                log_level="warning",
                timeout_graceful_shutdown=1,  # open live streams never end by themselves
            )
        )
        self.thread = threading.Thread(target=self.server.run, daemon=True)
        self.thread.start()
        poll(lambda: self.server.started, what="server start")

    def stop(self) -> None:
        assert self.server is not None and self.thread is not None
        self.server.should_exit = True
        self.thread.join(timeout=20)
        assert not self.thread.is_alive()


class Worker(threading.Thread):
    """The projector (and the SLA alert scan) in a loop, as ``beazap worker`` runs them."""

    def __init__(self, lake: Lake, engine: sa.Engine, settings: Settings, alerts_every: float | None = None) -> None:
        super().__init__(daemon=True)
        self.projector = Projector(lake, engine, settings)
        self.engine, self.settings, self.alerts_every = engine, settings, alerts_every
        self.stopping = threading.Event()
        self.scans = 0

    def run(self) -> None:
        last_scan = 0.0
        while not self.stopping.is_set():
            self.projector.run_once()
            if self.alerts_every is not None and time.monotonic() - last_scan >= self.alerts_every:
                now = datetime.now(UTC)
                alerts.scan(self.engine, now)
                alerts.deliver_due(self.engine, now, self.settings)
                last_scan = time.monotonic()
                self.scans += 1
            self.stopping.wait(0.05)  # the worker's pace between passes, not a synchronization

    def stop(self) -> None:
        self.stopping.set()
        self.join(timeout=30)


@pytest.fixture(scope="module")
def world(tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, Any]]:
    root = tmp_path_factory.mktemp("queue-ui")
    env = {"BEAZAP_SECRET_KEY_FILE": str(root / "secret.key"), "BEAZAP_LAKE_URI": str(root / "lake")}
    old = {k: os.environ.get(k) for k in env}
    os.environ.update(env)
    settings = Settings(
        lake_uri=str(root / "lake"),
        database_url=f"sqlite:///{root / 'ops.db'}",
        instance_cache_refresh_seconds=0.2,
        live_poll_seconds=0.05,
        live_keepalive_seconds=1.0,
    )
    (root / "lake").mkdir()
    engine = make_engine(settings.database_url)
    migrate.upgrade(engine)
    tokens = seed(engine)
    lake = Lake.from_settings(settings)
    server = Server(settings, engine, free_port())
    server.start()
    worker = Worker(lake, engine, settings)
    worker.start()
    with browser() as chrome:
        yield {"engine": engine, "settings": settings, "server": server, "chrome": chrome, "tokens": tokens}
    worker.stop()
    server.stop()
    engine.dispose()
    for k, v in old.items():
        if v is None:
            os.environ.pop(k, None)
        else:
            os.environ[k] = v


def open_queue(world: dict[str, Any], who: str, query: str = "", locale: str = "pt-BR") -> Any:
    context = world["chrome"].new_context(
        base_url=world["server"].base, locale=locale, viewport={"width": 1280, "height": 800}
    )
    page = context.new_page()
    page.goto(f"/app/queue{query}")
    page.locator("#email").fill(USERS[who])
    page.locator("#password").fill(PASSWORD)
    page.locator("#login-submit").click()
    page.wait_for_url(lambda url: "/app/queue" in url)
    page.wait_for_selector("#connection[data-state=connected]", timeout=15_000)
    return page


def row_ids(page: Any) -> list[str]:
    return page.eval_on_selector_all("table.queue tbody tr", "trs => trs.map(t => t.dataset.id)")


def post_webhook(world: dict[str, Any], instance: str, mid: str, phone: str) -> None:
    body = msg(instance, mid, int(datetime.now(UTC).timestamp()) - 5, phone=phone)
    r = httpx.post(f"{world['server'].base}/webhooks/evolution", json=body, headers={"apikey": f"hook-{instance}"})
    assert r.status_code == 200, r.text


def wait_row(page: Any, text: str, timeout: float = 20.0) -> float:
    """Seconds until a row showing ``text`` is in the page (polled with a deadline)."""
    started = time.monotonic()
    poll(lambda: page.locator("table.queue tbody tr", has_text=text).count() == 1, timeout, f"row {text}")
    return time.monotonic() - started


def test_webhook_makes_a_row_appear_within_two_seconds(world: dict[str, Any]) -> None:
    page = open_queue(world, "supervisor")
    # warm-up: the first webhook of a process creates the bronze tables
    post_webhook(world, "qa-1", "warm-1", "5511900000101")
    wait_row(page, "+5511900000101")
    started = time.monotonic()
    post_webhook(world, "qa-1", "fast-1", "5511900000102")
    poll(lambda: page.locator("table.queue tbody tr", has_text="+5511900000102").count() == 1, 10, "new row")
    elapsed = time.monotonic() - started
    assert elapsed <= 2.0, f"webhook → row took {elapsed:.2f} s"
    row = page.locator("#queue-waiting tbody tr", has_text="+5511900000102")
    assert row.locator(".badge").inner_text() == "No prazo"
    assert row.locator("th a").get_attribute("href").startswith("/app/console/conversations/")
    assert len(row_ids(page)) == len(set(row_ids(page)))
    screenshot(page, "queue")
    page.context.close()


def test_at_risk_gives_exactly_one_alert_on_the_page_and_one_webhook(world: dict[str, Any]) -> None:
    engine, settings = world["engine"], world["settings"]
    set_policy(
        engine,
        "qa-2",
        {"first_response": {"minutes": 2, "basis": "calendar"}, "resolution": None, "at_risk_ratio": 0.05},
    )
    with WebhookReceiver() as receiver:
        r = httpx.put(
            f"{world['server'].base}/v1/alerts/webhook",
            json={"url": receiver.url, "secret": SECRET},
            headers={"Authorization": f"Bearer {world['tokens']['a']}"},
        )
        assert r.status_code == 200
        page = open_queue(world, "supervisor", "?instance_id=qa-2")
        add_conversation(
            engine, "risky", instance="qa-2", phone="5511933330001", opened=datetime.now(UTC) - timedelta(seconds=1)
        )
        wait_row(page, "+5511933330001")
        assert page.locator("#q-risky .badge").inner_text() == "No prazo"
        worker = Worker(Lake.from_settings(settings), engine, settings, alerts_every=0.5)
        worker.start()
        try:
            poll(lambda: page.locator("#notification-list li").count() >= 1, 20, "alert in the bell")
            poll(lambda: page.locator("#toasts .toast").count() >= 1, 5, "toast")
            poll(lambda: page.locator("#q-risky .badge").inner_text() == "Em risco", 10, "row turns at risk")
            poll(lambda: len(receiver.requests) >= 1, 20, "alert webhook delivered")
            scans = worker.scans
            poll(lambda: worker.scans >= scans + 4, 20, "more alert scans")
        finally:
            worker.stop()
        items = page.locator("#notification-list li")
        assert items.count() == 1 and page.locator("#bell-count").inner_text() == "1"
        assert "Em risco" in items.first.inner_text() and "primeira resposta" in items.first.inner_text()
        hooks = [r for r in receiver.requests if b'"risky"' in r[1]]
        assert len(hooks) == 1 and b'"sla.at_risk"' in hooks[0][1]
        # ack from the page: gone from the bell, and from the API's unacknowledged list
        page.locator("#bell").click()
        screenshot(page, "queue-alert")
        if os.environ.get("BEAZAP_DOCS_SCREENSHOTS"):  # docs/console.md's picture
            page.screenshot(path=str(Path(os.environ["BEAZAP_DOCS_SCREENSHOTS"]) / "console-queue.png"))
        items.first.locator("button.ack").click()
        poll(lambda: page.locator("#notification-list li").count() == 0, 10, "ack")
        left = httpx.get(
            f"{world['server'].base}/v1/notifications",
            params={"recipient": "supervisors"},
            headers={"Authorization": f"Bearer {world['tokens']['a']}"},
        ).json()
        assert [n for n in left if n["conversation_id"] == "risky"] == []
        page.context.close()


def test_reconnects_after_a_server_restart_and_catches_up(world: dict[str, Any]) -> None:
    engine, server = world["engine"], world["server"]
    add_conversation(engine, "before-1", instance="qa-2", phone="5511944440001")
    add_conversation(engine, "before-2", instance="qa-2", phone="5511944440002")
    page = open_queue(world, "supervisor", "?instance_id=qa-2")
    assert {"before-1", "before-2"} <= set(row_ids(page))
    reloads = page.locator("#queue").get_attribute("data-reloads")

    server.stop()
    poll(lambda: page.locator("#connection").get_attribute("data-state") == "reconnecting", 15, "indicator")
    assert page.locator("#connection").inner_text() == "Reconectando…"
    add_conversation(engine, "while-down", instance="qa-2", phone="5511944440003")
    with engine.begin() as conn:
        conn.execute(
            sa.update(conversations)
            .where(conversations.c.id == "before-2")
            .values(status="resolved", resolved_at=datetime.now(UTC), version=2)
        )
    server.start()

    poll(lambda: page.locator("#connection").get_attribute("data-state") == "connected", 30, "reconnected")
    poll(lambda: "while-down" in row_ids(page) and "before-2" not in row_ids(page), 15, "caught up")
    ids = row_ids(page)
    assert len(ids) == len(set(ids)), "duplicate rows"
    with engine.connect() as conn:
        open_ids = set(
            conn.execute(
                sa.select(conversations.c.id).where(
                    conversations.c.instance_id == "qa-2", conversations.c.status == "open"
                )
            ).scalars()
        )
    assert set(ids) == open_ids
    # caught up by Last-Event-ID on the same EventSource, not by reloading the whole page
    assert page.locator("#queue").get_attribute("data-reloads") == reloads
    assert page.locator("#connection").inner_text() == "Ao vivo"
    page.context.close()


def test_attendant_sees_own_and_unassigned_and_other_account_sees_nothing(world: dict[str, Any]) -> None:
    engine, base = world["engine"], world["server"].base
    add_conversation(engine, "mine", phone="5511955550001", assignee="ana")
    add_conversation(engine, "bobs", phone="5511955550002", assignee="bob")
    add_conversation(engine, "free", phone="5511955550003")
    ana = open_queue(world, "attendant", locale="en")
    ids = set(row_ids(ana))
    assert {"mine", "free"} <= ids and "bobs" not in ids
    assert "5511955550001" not in ana.content() and "***01" in ana.content()
    other = open_queue(world, "supervisor_b")
    assert not {"mine", "bobs", "free"} & set(row_ids(other))

    # live: a new unassigned conversation appears for ana (masked), never for account B
    post_webhook(world, "qa-1", "att-live-1", "5511955550004")
    poll(lambda: ana.locator("table.queue tbody tr", has_text="***04").count() == 1, 20, "unassigned row for ana")
    # moved to bob: it leaves ana's view; assigned to ana: it moves to her "being handled" table
    token = {"Authorization": f"Bearer {world['tokens']['a']}"}
    r = httpx.post(f"{base}/v1/conversations/free/assign", json={"attendant_id": "bob"}, headers=token)
    assert r.status_code == 200, r.text
    poll(lambda: "free" not in row_ids(ana), 10, "bob's conversation leaves ana's queue")
    r = httpx.post(f"{base}/v1/conversations/bobs/transfer", json={"attendant_id": "ana"}, headers=token)
    assert r.status_code == 200, r.text
    poll(lambda: ana.locator("#queue-assigned #q-bobs").count() == 1, 10, "transferred to ana")
    assert ana.locator("#q-bobs .assignee").inner_text() == "You"

    # account B: its stream is live (its own change arrives) and A's changes never do
    add_conversation(engine, "b-live", instance="qb-1", phone="5521966660001")
    poll(lambda: "b-live" in row_ids(other), 10, "B's own change")
    assert not {"mine", "bobs", "free"} & set(row_ids(other))
    assert "5511955550004" not in other.content()
    for path in ("/app/queue?instance_id=qa-1", "/app/queue?team_id=qa-1-sales"):
        answer = other.request.get(path)
        assert answer.status == 404 and "5511" not in answer.text()
    assert other.request.get("/v1/live/stream?instance_id=qa-1").status == 404
    assert other.request.get("/app/queue/rows?id=mine").json()["items"] == []
    assert other.request.get("/app/queue/stream?instance_id=qa-1").status == 404
    assert other.request.get("/app/queue/stream?team_id=qa-1-sales").status == 404
    ana.context.close()
    other.context.close()


def test_presence_online_while_the_page_is_open_then_away_when_idle(world: dict[str, Any]) -> None:
    page = open_queue(world, "attendant2")
    headers = {"Authorization": f"Bearer {world['tokens']['a']}"}

    def state() -> str:
        answer = httpx.get(f"{world['server'].base}/v1/presence", headers=headers).json()
        return {p["attendant_id"]: p["state"] for p in answer}["bob"]

    poll(lambda: state() == "online", 10, "bob online")
    # idle: the page reports away once idle for the away threshold (the clock moved forward)
    page.clock.install()
    away_ms = float(page.locator("#queue").get_attribute("data-away-after")) * 1000
    page.clock.fast_forward(int(away_ms) + 2000)
    poll(lambda: state() == "away", 15, "bob away")
    page.mouse.move(10, 10)
    page.mouse.move(200, 200)
    poll(lambda: state() == "online", 15, "bob back online")
    page.context.close()
