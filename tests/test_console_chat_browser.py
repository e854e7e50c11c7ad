"""The console's conversation view in a real browser (Playwright + Debian's Chromium), against the
real receiver and projector and a fake Evolution server on loopback: take, quick reply and reply
(exactly one send), the READ ack turning the tick within 2 s without a reload, two people acting on
the same conversation (the second is told who acted first), an Evolution failure then Retry (no
double send), and another account's conversation answering 404 on the page and the API."""

from __future__ import annotations

import re
import threading
import time
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import httpx
import pytest

from live.projector import run_once
from tests.browser import browser, screenshot
from tests.chat_support import PASSWORD, PHONE, USERS, ChatWorld, build
from tests.console_support import LiveServer, poll
from tests.fakes.evolution import FakeEvolution, running_fake_evolution
from tests.ops_helpers import ack, msg

pytestmark = pytest.mark.slow
READ_WITHIN_SECONDS = 2.0


@pytest.fixture
def db_url(tmp_path: Path) -> str:
    return f"sqlite:///{tmp_path / 'ops.db'}"  # the HTTP tests cover PostgreSQL; the page is the same


@pytest.fixture(scope="module")
def chrome() -> Iterator[Any]:
    with browser() as b:
        yield b


class Projector(threading.Thread):
    """``beazap worker``'s projector loop, in a thread, until stopped."""

    def __init__(self, lake: Any, engine: Any) -> None:
        super().__init__(daemon=True)
        self.lake, self.engine = lake, engine
        self.halt = threading.Event()
        self.errors: list[BaseException] = []

    def run(self) -> None:
        while not self.halt.is_set():
            try:
                run_once(self.lake, self.engine)
            except Exception as exc:  # kept for the test to report, the loop goes on like the worker's
                self.errors.append(exc)
            self.halt.wait(0.05)  # the loop's pace, not a synchronization

    def stop(self) -> None:
        self.halt.set()
        self.join(timeout=30)


@pytest.fixture
def site(engine, settings, lake) -> Iterator[tuple[str, ChatWorld, FakeEvolution, str]]:
    settings.instance_cache_refresh_seconds = 0.2
    settings.live_poll_seconds = 0.05
    settings.live_keepalive_seconds = 1.0
    settings.evolution_retries = 1
    server = LiveServer(engine, settings)
    base = server.start()
    projector = Projector(lake, engine)
    with running_fake_evolution() as evo, httpx.Client(base_url=base) as client:
        world = build(client, engine, evolution_url=evo.base_url)
        evo.webhooks["acme-1"] = {"url": f"{base}/webhooks/evolution", "headers": {"apikey": world.acme_hook}}
        projector.start()
        body = msg("acme-1", "in-1", int(datetime.now(UTC).timestamp()) - 30, phone=PHONE, text="Oi, preciso de ajuda")
        poll(
            lambda: (
                client.post("/webhooks/evolution", json=body, headers={"apikey": world.acme_hook}).status_code == 200
            ),
            what="the receiver accepts the customer's message",
        )
        auth = {"Authorization": f"Bearer {world.acme_token}"}
        conv = poll(
            lambda: client.get("/v1/conversations", headers=auth).json()["items"], what="conversation projected"
        )
        yield base, world, evo, conv[0]["id"]
    projector.stop()
    server.stop()
    assert projector.errors == []


def open_as(chrome: Any, base: str, who: str, path: str) -> Any:
    context = chrome.new_context(base_url=base, locale="pt-BR", viewport={"width": 1280, "height": 800})
    page = context.new_page()
    page.goto(path)
    assert "/app/login" in page.url
    page.get_by_label("E-mail").fill(USERS[who])
    page.locator("#password").fill(PASSWORD)
    page.locator("#login-submit").click()
    page.wait_for_url(lambda url: "/app/login" not in url)
    return page


def live(page: Any) -> None:
    page.wait_for_selector("body[data-live='on']", timeout=10_000)


def post_webhook(base: str, hook: str, body: dict[str, Any]) -> None:
    assert httpx.post(f"{base}/webhooks/evolution", json=body, headers={"apikey": hook}).status_code == 200


def test_take_quick_reply_send_once_and_read_tick_live(chrome, site) -> None:
    from playwright.sync_api import expect

    base, world, evo, conv = site
    r = httpx.post(
        f"{base}/v1/quick-replies",
        json={"shortcut": "/saudacao", "title": "Saudação", "body": "Olá! Como posso ajudar?"},
        headers={"Authorization": f"Bearer {world.acme_token}"},
    )
    assert r.status_code == 201, r.text
    page = open_as(chrome, base, "ana", f"/app/console/conversations/{conv}")
    live(page)
    expect(page.locator("#transcript li[data-message-id='in-1']")).to_contain_text("preciso de ajuda")

    page.locator("#act-take").click()
    expect(page.locator("#chat-assignee")).to_contain_text("Ana")

    box = page.locator("#reply-text")
    box.press_sequentially("/sau")
    expect(page.locator("#quick-replies [role=option]")).to_have_count(1)
    box.press("Tab")
    expect(box).to_have_value("Olá! Como posso ajudar?")

    evo.delay_next = [0.6]  # long enough to see the message waiting
    box.press("Enter")
    expect(page.locator("#pending li.local .tick")).to_have_attribute("data-tick", "pending")
    sent = poll(lambda: evo.sent, what="Evolution received the reply")
    mid = sent[0]["id"]
    bubble = page.locator(f"#transcript li[data-message-id='{mid}']")
    expect(bubble).to_contain_text("Olá! Como posso ajudar?", timeout=10_000)
    expect(bubble.locator(".tick")).to_have_attribute("data-tick", re.compile("sent|delivered"))
    expect(page.locator("#pending li")).to_have_count(0)
    assert len(evo.sent) == 1 and sent[0]["text"] == "Olá! Como posso ajudar?"

    started = time.monotonic()
    post_webhook(base, world.acme_hook, ack("acme-1", mid, "READ", phone=PHONE))
    expect(bubble.locator(".tick")).to_have_attribute("data-tick", "read", timeout=READ_WITHIN_SECONDS * 1000)
    elapsed = time.monotonic() - started
    print(f"READ ack posted to the receiver → read tick on the page: {elapsed:.2f} s")  # pytest -s shows it
    assert elapsed <= READ_WITHIN_SECONDS
    assert len(evo.sent) == 1

    started = time.monotonic()  # a new message from the customer shows up without a reload too
    body = msg("acme-1", "in-2", int(datetime.now(UTC).timestamp()), phone=PHONE, text="Obrigada, fico no aguardo")
    post_webhook(base, world.acme_hook, body)
    expect(page.locator("#transcript li[data-message-id='in-2']")).to_contain_text(
        "fico no aguardo", timeout=READ_WITHIN_SECONDS * 1000
    )
    print(f"customer message posted to the receiver → on the page: {time.monotonic() - started:.2f} s")
    assert time.monotonic() - started <= READ_WITHIN_SECONDS
    screenshot(page, "console-chat")


def test_second_person_is_told_who_acted_first(chrome, site) -> None:
    from playwright.sync_api import expect

    base, _world, _evo, conv = site
    ana = open_as(chrome, base, "ana", f"/app/console/conversations/{conv}")
    bruno = open_as(chrome, base, "bruno", f"/app/console/conversations/{conv}")
    live(ana)
    live(bruno)
    ana.locator("#act-resolve").click()
    expect(ana.locator("#chat-status")).to_have_attribute("data-status", "resolved")
    bruno.locator("#act-take").click()
    notice = bruno.locator("#chat-notice")
    expect(notice).to_have_attribute("data-kind", "conflict")
    expect(notice).to_have_text(re.compile(r"^Ana resolveu esta conversa há \d+ s$"))
    expect(bruno.locator("#chat-status")).to_have_attribute("data-status", "resolved")
    expect(bruno.locator("#chat-assignee")).not_to_contain_text("Bruno")


def test_evolution_failure_then_retry_sends_once(chrome, site) -> None:
    from playwright.sync_api import expect

    base, _world, evo, conv = site
    page = open_as(chrome, base, "ana", f"/app/console/conversations/{conv}")
    live(page)
    evo.fail_next = [500]
    page.locator("#reply-text").fill("Seu pedido saiu para entrega")
    page.locator("#reply-send").click()
    failure = page.locator("#pending li.local .failure")
    expect(failure).to_contain_text("boom")
    expect(page.locator("#pending li.local .tick")).to_have_attribute("data-tick", "failed")
    assert evo.sent == [] and evo.requests == 1

    failure.get_by_role("button").click()
    sent = poll(lambda: evo.sent, what="the retry reached Evolution")
    bubble = page.locator(f"#transcript li[data-message-id='{sent[0]['id']}']")
    expect(bubble).to_contain_text("Seu pedido saiu para entrega", timeout=10_000)
    expect(bubble.locator(".sender")).to_have_text("Ana")  # an attendant's reply is theirs, assigned or not
    expect(page.locator("#pending li")).to_have_count(0)
    expect(page.locator("#transcript li.bubble.out", has_text="Seu pedido saiu para entrega")).to_have_count(1)
    assert len(evo.sent) == 1 and evo.requests == 2  # the failed try and the retry: one message


def test_another_account_gets_404_on_the_page_and_the_api(chrome, site) -> None:
    from playwright.sync_api import expect

    base, _world, evo, conv = site
    page = open_as(chrome, base, "beta", f"/app/console/conversations/{conv}")
    expect(page.locator("h1")).to_have_text(re.compile("não encontrad", re.I))
    assert PHONE not in page.content()
    csrf = page.locator("input[name='csrf']").first.input_value()
    for path, body in (
        (f"/v1/conversations/{conv}/assign", {"attendant_id": "ana"}),
        (f"/v1/conversations/{conv}/resolve", {}),
        (f"/v1/conversations/{conv}/messages", {"text": "oi"}),
    ):
        r = page.request.post(path, data=body, headers={"X-CSRF-Token": csrf, "If-Match": "1"})
        assert r.status == 404, (path, r.status)
    assert page.request.get(f"/v1/conversations/{conv}").status == 404
    assert evo.requests == 0
