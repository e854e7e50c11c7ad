"""The dashboard in a real browser (Playwright + Debian's Chromium): log in per role, the overview's
numbers equal the metrics API's, period and filters, SLA breach drill-down, language switch and CSV
download. Screenshots of each page land in ``.beazap/screenshots``."""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlparse

import pytest

from tests.browser import browser, screenshot, serve
from tests.web_world import ATTENDANT, OTHER_ATTENDANT, PASSWORD, PERIOD, USERS, WebWorld

pytestmark = pytest.mark.slow
QUERY = f"from={PERIOD['from']}&to={PERIOD['to']}"


@pytest.fixture(scope="module")
def site(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[WebWorld, str, Any]]:
    root = tmp_path_factory.mktemp("webui")
    old = os.environ.get("BEAZAP_SECRET_KEY_FILE")
    os.environ["BEAZAP_SECRET_KEY_FILE"] = str(root / "secret.key")
    world = WebWorld(root)
    with browser() as chrome, serve(world.app) as base:
        yield world, base, chrome
    world.engine.dispose()
    if old is None:
        os.environ.pop("BEAZAP_SECRET_KEY_FILE", None)


def open_as(site: tuple[WebWorld, str, Any], who: str, locale: str = "pt-BR") -> Any:
    _world, base, chrome = site
    context = chrome.new_context(
        base_url=base, locale=locale, accept_downloads=True, viewport={"width": 1280, "height": 800}
    )
    page = context.new_page()
    page.goto(f"/app?{QUERY}")
    assert "/app/login" in page.url
    if who == "admin":
        screenshot(page, "login")
    page.get_by_label("E-mail").fill(USERS[who])  # the label reads the same in both languages
    page.locator("#password").fill(PASSWORD)
    page.locator("#login-submit").click()
    page.wait_for_url(lambda url: "/app/login" not in url)
    return page


def card_values(page: Any) -> dict[str, str]:
    return page.eval_on_selector_all(
        "article.card[data-key]",
        "cards => Object.fromEntries(cards.map(c => [c.dataset.key, c.querySelector('.value').dataset.raw]))",
    )


def api_json(page: Any, path: str, query: str) -> Any:
    answer = page.request.get(f"{path}?{query}")  # the browser context's cookie: the same user
    assert answer.ok, answer.text()
    return answer.json()


def assert_cards_match(page: Any, query: str) -> None:
    figures = api_json(page, "/v1/metrics/overview", query)["current"]
    shown = card_values(page)
    assert shown, "no cards on the overview"
    for key, raw in shown.items():
        want = figures[key]
        assert (raw == "" and want is None) or float(raw) == pytest.approx(want), key


def test_supervisor_overview_equals_the_api_and_follows_period_and_filters(site: Any) -> None:
    page = open_as(site, "supervisor")
    assert page.locator("html").get_attribute("lang") == "pt-BR"
    assert_cards_match(page, QUERY)
    screenshot(page, "overview")
    # a filter and a custom period from the filter bar; the URL carries them (a shareable view)
    page.select_option("#instance_id", "inst-a1")
    page.fill("#from", "2026-03-10")
    page.fill("#to", "2026-03-12")
    page.locator("#apply").click()
    page.wait_for_url(lambda url: "instance_id=inst-a1" in url)
    params = parse_qs(urlparse(page.url).query)
    assert params["period"] == ["custom"] and params["from"] == ["2026-03-10"] and params["instance_id"] == ["inst-a1"]
    assert_cards_match(page, "from=2026-03-10&to=2026-03-12&instance_id=inst-a1")
    # a preset period fills the dates itself
    page.select_option("#period", "7d")
    page.locator("#apply").click()
    page.wait_for_url(lambda url: "period=7d" in url)
    assert "from=" not in page.url
    page.context.close()


def test_pages_render_with_charts_and_a_csv_downloads(site: Any, tmp_path: Path) -> None:
    page = open_as(site, "supervisor")
    for name in ("volume", "sla", "people", "calls"):
        page.goto(f"/app/{name}?{QUERY}")
        page.wait_for_function("document.documentElement.dataset.chartsDrawn === 'true'")
        assert page.locator("figure.chart[data-drawn='error']").count() == 0
        screenshot(page, name)
    page.goto(f"/app/volume?{QUERY}")
    assert page.locator("figure.chart canvas").count() >= 1
    with page.expect_download() as info:
        page.locator("a.csv").first.click()
    saved = tmp_path / "volume.csv"
    info.value.save_as(saved)
    api = page.request.get(f"/v1/metrics/volume?{QUERY}&granularity=day", headers={"Accept": "text/csv"})
    assert saved.read_bytes() == api.body() and saved.read_bytes().startswith(b"bucket,")
    page.context.close()


def test_sla_breach_drills_to_the_conversation(site: Any) -> None:
    page = open_as(site, "supervisor")
    page.goto(f"/app/sla?{QUERY}")
    link = page.locator("a.breach-link").first
    href = link.get_attribute("href")
    link.click()
    page.wait_for_url(lambda url: "/app/conversations/" in url)
    assert page.locator("#frt-sla").inner_text() == "breached"
    assert href.split("?")[0].rsplit("/", 1)[1] == page.locator("#conversation-id").inner_text()
    screenshot(page, "conversation")
    page.context.close()


def test_language_switch_and_browser_language(site: Any) -> None:
    page = open_as(site, "supervisor")
    assert page.locator("h1").first.inner_text() == "Visão geral"
    inbound = page.locator("article.card[data-key='messages_inbound'] .value").inner_text()
    page.locator("#lang-switch").click()
    page.wait_for_function("document.documentElement.lang === 'en'")
    assert page.locator("h1").first.inner_text() == "Overview"
    screenshot(page, "overview-en")
    assert page.locator("article.card[data-key='messages_inbound'] .value").inner_text() == inbound.replace(".", ",")
    page.context.close()
    english = open_as(site, "supervisor", locale="en-US")
    assert english.locator("html").get_attribute("lang") == "en"
    english.context.close()


def test_attendant_sees_only_their_own_figures_and_no_settings(site: Any) -> None:
    page = open_as(site, "attendant")
    assert page.locator("a[href='/app/settings']").count() == 0
    assert parse_qs(urlparse(page.url).query).get("attendant_id") in (None, [ATTENDANT])
    assert_cards_match(page, f"{QUERY}&attendant_id={ATTENDANT}")
    response = page.goto("/app/settings")
    assert response.status == 403
    response = page.goto(f"/app?{QUERY}&attendant_id={OTHER_ATTENDANT}")
    assert response.status == 403
    assert page.request.get(f"/v1/metrics/overview?{QUERY}").status == 403
    page.context.close()


def test_supervisor_of_b_sees_nothing_of_a(site: Any) -> None:
    page = open_as(site, "supervisor_b")
    options = page.eval_on_selector_all("#instance_id option", "os => os.map(o => o.value)")
    assert options == ["", "inst-b1"]
    assert page.goto(f"/app?{QUERY}&instance_id=inst-a1").status == 404
    assert page.request.get(f"/v1/metrics/overview?{QUERY}&instance_id=inst-a1").status == 404
    page.context.close()


def test_admin_settings_page(site: Any) -> None:
    page = open_as(site, "admin")
    page.goto("/app/settings")
    assert page.locator("#instances h3").count() == 2
    screenshot(page, "settings")
    page.context.close()


def test_business_hours_change_shows_in_the_business_frt_after_the_rebuild(site: Any) -> None:
    from gold.runner import build_gold
    from tests.web_world import AS_OF

    world, _base, _chrome = site
    page = open_as(site, "admin")
    key = "frt_business_median_seconds"
    before = card_values(page)[key]
    page.goto("/app/settings")
    always_open = (
        '{"weekly": {"mon": [["00:00", "24:00"]], "tue": [["00:00", "24:00"]], '
        + ", ".join(f'"{d}": [["00:00", "24:00"]]' for d in ("wed", "thu", "fri", "sat", "sun"))
        + "}}"
    )
    for instance in ("inst-a1", "inst-a2"):
        form = page.locator(f"form[aria-label='{instance}']")
        form.locator("textarea[name='business_hours']").fill(always_open)
        form.locator("button[type='submit']").click()
        page.wait_for_selector("#notice")
    build_gold(world.lake, engine=world.engine, settings=world.settings, as_of=AS_OF)
    world.app.state.gold_reader.refresh(force=True)
    page.goto(f"/app?{QUERY}")
    after = card_values(page)
    assert after[key] != before
    # open around the clock: business time equals calendar time
    assert float(after[key]) == pytest.approx(float(after["frt_median_seconds"]))
    assert_cards_match(page, QUERY)
    page.context.close()
