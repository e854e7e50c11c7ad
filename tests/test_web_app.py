"""The web dashboard over HTTP (no browser): login, sessions, CSRF, rate limit, roles and tenant scope,
the API accepting the session cookie, CSV downloads and the formatting of figures per language."""

from __future__ import annotations

import os
import re
from collections.abc import Iterator
from pathlib import Path

import pytest
from fastapi.testclient import TestClient

from api.web import fmt
from api.web.session import LoginLimiter
from tests.web_world import ATTENDANT, OTHER_ATTENDANT, PASSWORD, PERIOD, USERS, WebWorld


@pytest.fixture(scope="module")
def world(tmp_path_factory: pytest.TempPathFactory) -> Iterator[WebWorld]:
    root = tmp_path_factory.mktemp("web")
    old = os.environ.get("BEAZAP_SECRET_KEY_FILE")
    os.environ["BEAZAP_SECRET_KEY_FILE"] = str(root / "secret.key")
    w = WebWorld(root)
    yield w
    w.engine.dispose()
    if old is None:
        os.environ.pop("BEAZAP_SECRET_KEY_FILE", None)


def login(world: WebWorld, who: str, password: str = PASSWORD, client: TestClient | None = None) -> TestClient:
    client = client or TestClient(world.app)
    form = client.get("/app/login")
    csrf = re.search(r'name="csrf" value="([^"]+)"', form.text).group(1)
    r = client.post(
        "/app/login",
        data={"email": USERS.get(who, who), "password": password, "csrf": csrf, "next": "/app"},
        follow_redirects=False,
    )
    client.last_login = r  # type: ignore[attr-defined]
    return client


def test_root_redirects_and_pages_need_login(world: WebWorld) -> None:
    client = TestClient(world.app)
    r = client.get("/", follow_redirects=False)
    assert r.status_code == 307 and r.headers["location"] == "/app"
    r = client.get("/app/sla?period=7d", follow_redirects=False)
    assert r.status_code == 303 and r.headers["location"].startswith("/app/login?next=/app/sla")


def test_login_sets_a_safe_session_cookie_and_logout_ends_it(world: WebWorld) -> None:
    client = login(world, "supervisor")
    r = client.last_login  # type: ignore[attr-defined]
    assert r.status_code == 303
    cookie = r.headers["set-cookie"]
    assert "beazap_session=" in cookie and "HttpOnly" in cookie and "SameSite=lax" in cookie
    assert client.get("/app", params=PERIOD).status_code == 200
    page = client.get("/app", params=PERIOD).text
    csrf = re.search(r'name="csrf" value="([^"]+)"', page).group(1)
    client.post("/app/logout", data={"csrf": csrf})
    assert client.get("/app", follow_redirects=False).status_code == 303


def test_login_without_csrf_or_with_a_wrong_password_fails(world: WebWorld) -> None:
    client = TestClient(world.app)
    r = client.post(
        "/app/login", data={"email": USERS["admin"], "password": PASSWORD, "csrf": "x"}, follow_redirects=False
    )
    assert r.status_code == 303 and "error=expired" in r.headers["location"]
    assert "beazap_session" not in r.headers.get("set-cookie", "")
    r = login(world, "admin", password="wrong password").last_login  # type: ignore[attr-defined]
    assert r.status_code == 401 and "beazap_session" not in r.headers.get("set-cookie", "")


def test_login_is_rate_limited_per_email_and_address(world: WebWorld) -> None:
    world.app.state.login_limiter = LoginLimiter()  # earlier tests' failed logins came from the same address
    try:
        for _ in range(5):
            assert login(world, "admin", "bad password").last_login.status_code == 401  # type: ignore[attr-defined]
        # blocked: even the right password is refused; another e-mail from the same address is not affected
        assert login(world, "admin").last_login.status_code == 429  # type: ignore[attr-defined]
        assert login(world, "supervisor").last_login.status_code == 303  # type: ignore[attr-defined]
    finally:
        world.app.state.login_limiter = LoginLimiter()


def test_overview_shows_the_metrics_api_numbers(world: WebWorld) -> None:
    client = login(world, "supervisor")
    api = client.get("/v1/metrics/overview", params=PERIOD, headers={"Authorization": f"Bearer {world.token_a}"})
    figures = api.json()["current"]
    page = client.get("/app", params=PERIOD).text
    for key in ("messages_inbound", "conversations_opened", "conversations_resolved"):
        raw = re.search(rf'data-key="{key}">.*?data-raw="([^"]*)"', page, re.S).group(1)
        assert int(raw) == figures[key]
    assert fmt.number(figures["messages_inbound"], "pt-BR") in page


def test_api_accepts_the_session_cookie_for_reading_only(world: WebWorld) -> None:
    client = login(world, "supervisor")
    r = client.get("/v1/metrics/overview", params=PERIOD)
    assert r.status_code == 200 and r.json()["instance_ids"] == ["inst-a1", "inst-a2"]
    r = client.post("/v1/teams", json={"instance_id": "inst-a1", "name": "X"})
    assert r.status_code == 401  # a cookie never authorizes a write (CSRF)


def test_supervisor_of_b_sees_nothing_of_a(world: WebWorld) -> None:
    client = login(world, "supervisor_b")
    r = client.get("/app", params={**PERIOD, "instance_id": "inst-a1"})
    assert r.status_code == 404
    assert client.get("/v1/metrics/overview", params={**PERIOD, "instance_id": "inst-a1"}).status_code == 404
    assert client.get("/v1/metrics/overview", params=PERIOD).json()["instance_ids"] == ["inst-b1"]


def test_attendant_sees_only_their_own_figures(world: WebWorld) -> None:
    client = login(world, "attendant")
    assert client.get("/app", params=PERIOD).status_code == 200
    assert client.get("/app", params={**PERIOD, "attendant_id": OTHER_ATTENDANT}).status_code == 403
    assert client.get("/app/settings").status_code == 403
    api = client.get("/v1/metrics/attendants", params={**PERIOD, "attendant_id": ATTENDANT})
    assert api.status_code == 200 and {r["id"] for r in api.json()["rows"]} <= {ATTENDANT}
    assert client.get("/v1/metrics/attendants", params=PERIOD).status_code == 403
    assert client.get("/v1/instances").status_code == 403


def test_every_page_renders_for_a_supervisor(world: WebWorld) -> None:
    client = login(world, "supervisor")
    for path in ("/app", "/app/volume", "/app/volume?granularity=hour", "/app/sla", "/app/people", "/app/calls"):
        r = client.get(path, params=PERIOD)
        assert r.status_code == 200, (path, r.text[:500])
    assert client.get("/app/people", params={**PERIOD, "sort": "frt_median_seconds"}).status_code == 200


def test_csv_download_is_the_api_csv(world: WebWorld) -> None:
    client = login(world, "supervisor")
    r = client.get("/app/csv/volume", params={**PERIOD, "granularity": "day"})
    assert r.status_code == 200 and r.headers["content-type"].startswith("text/csv")
    api = client.get(
        "/v1/metrics/volume",
        params={**PERIOD, "granularity": "day"},
        headers={"Authorization": f"Bearer {world.token_a}", "Accept": "text/csv"},
    )
    assert r.text == api.text
    assert client.get("/app/csv/nope", params=PERIOD).status_code == 404


def test_language_follows_cookie_then_accept_language(world: WebWorld) -> None:
    client = login(world, "supervisor")
    assert "Visão geral" in client.get("/app", params=PERIOD).text
    assert "Overview" in client.get("/app", params=PERIOD, headers={"Accept-Language": "en-US,en;q=0.9"}).text
    client.get("/app/lang", params={"to": "en", "next": "/app"})
    assert 'lang="en"' in client.get("/app", params=PERIOD).text
    r = client.get("/app/lang", params={"to": "en", "next": "https://evil.example/"}, follow_redirects=False)
    assert r.headers["location"] == "/app"


def test_empty_period_says_where_data_exists(world: WebWorld) -> None:
    client = login(world, "supervisor")
    page = client.get("/app", params={"from": "2025-01-01", "to": "2025-01-07"}).text
    assert 'id="empty-period"' in page


@pytest.mark.parametrize(
    ("value", "pt", "en"),
    [(1234, "1.234", "1,234"), (1234567.5, "1.234.568", "1,234,568"), (None, "—", "—")],
)
def test_number_per_locale(value: float | None, pt: str, en: str) -> None:
    assert fmt.number(value, "pt-BR") == pt and fmt.number(value, "en") == en


def test_dates_and_durations_per_locale() -> None:
    from datetime import date

    assert fmt.day(date(2026, 12, 7), "pt-BR") == "07/12/2026"
    assert fmt.day(date(2026, 12, 7), "en") == "12/07/2026"
    assert fmt.duration(200, "pt-BR") == "3 min 20 s"
    assert fmt.duration(45, "en") == "45 s"
    assert fmt.duration(3600 + 300, "en") == "1 h 05 min"
    assert fmt.pct(91.25, "pt-BR") == "91,2%" or fmt.pct(91.25, "pt-BR") == "91,3%"
    assert fmt.change(-12.5, "pt-BR") == "-12,5%" and fmt.change(3, "en") == "+3.0%"


def test_catalogues_have_the_same_keys() -> None:
    from api.web.i18n import catalogue

    assert set(catalogue("pt-BR")) == set(catalogue("en"))


def test_templates_use_only_known_message_keys() -> None:
    from api.web.i18n import catalogue

    known = set(catalogue("pt-BR"))
    used: set[str] = set()
    for path in (Path(__file__).parents[1] / "api" / "web" / "templates").glob("*.html"):
        used |= set(re.findall(r"\bt\('([a-z0-9_]+)'\)", path.read_text()))
    assert used - known == set()


def _csrf(page: str) -> str:
    return re.search(r'name="csrf" value="([^"]+)"', page).group(1)


def test_admin_settings_change_an_instance_through_the_api_validation(world: WebWorld) -> None:
    client = login(world, "admin")
    page = client.get("/app/settings")
    assert page.status_code == 200 and "inst-a1" in page.text and "inst-b1" not in page.text
    csrf = _csrf(page.text)
    bad = client.post("/app/settings/instance", data={"csrf": csrf, "instance_id": "inst-a2", "sla_policy": "[1]"})
    assert bad.status_code == 422 and 'id="settings-error"' in bad.text and "sla_policy" in bad.text
    bad = client.post("/app/settings/instance", data={"csrf": csrf, "instance_id": "inst-a2", "sla_policy": "{"})
    assert bad.status_code == 422 and 'id="settings-error"' in bad.text
    ok = client.post(
        "/app/settings/instance", data={"csrf": csrf, "instance_id": "inst-a2", "timezone": "America/Manaus"}
    )
    assert ok.status_code == 200, ok.text[:400]
    api = client.get("/v1/instances/inst-a2").json()
    assert api["timezone"] == "America/Manaus"
    other = client.post("/app/settings/instance", data={"csrf": csrf, "instance_id": "inst-b1", "timezone": "UTC"})
    assert other.status_code == 422 and "inst-b1" not in other.text.split('id="instances"')[1].split("</h3>")[0]
    odd = client.post(
        "/app/settings/instance", data={"csrf": csrf, "instance_id": "inst-a2/webhook", "timezone": "UTC"}
    )
    assert odd.status_code == 422 and "invalid id" in odd.text
    forged = client.post("/app/settings/instance", data={"csrf": "x", "instance_id": "inst-a2", "timezone": "UTC"})
    assert forged.status_code == 422 and client.get("/v1/instances/inst-a2").json()["timezone"] == "America/Manaus"


def test_admin_adds_a_user_and_creates_a_token_shown_once(world: WebWorld) -> None:
    client = login(world, "admin")
    csrf = _csrf(client.get("/app/settings").text)
    r = client.post(
        "/app/settings/user",
        data={"csrf": csrf, "email": "new@a.example", "password": "short", "role": "supervisor"},
    )
    assert r.status_code == 422
    r = client.post(
        "/app/settings/user",
        data={"csrf": csrf, "email": "new@a.example", "password": PASSWORD, "role": "supervisor"},
    )
    assert r.status_code == 200 and "new@a.example" in r.text
    assert login(world, "new@a.example").last_login.status_code == 303  # type: ignore[attr-defined]
    r = client.post("/app/settings/token", data={"csrf": csrf, "name": "bi", "scope": "read-only"})
    token = re.search(r'id="secret">([^<]+)<', r.text).group(1)
    api = TestClient(world.app).get("/v1/metrics/overview", params=PERIOD, headers={"Authorization": f"Bearer {token}"})
    assert api.status_code == 200
    assert token not in client.get("/app/settings").text


def test_supervisor_cannot_open_settings(world: WebWorld) -> None:
    client = login(world, "supervisor")
    assert client.get("/app/settings").status_code == 403
    assert client.post("/app/settings/token", data={"csrf": "x", "scope": "admin"}).status_code == 403


def test_empty_period_links_to_the_months_with_data(world: WebWorld) -> None:
    client = login(world, "supervisor")
    page = client.get("/app", params={"from": "2025-01-01", "to": "2025-01-07"}).text
    assert "03/2026" in page and "from=2026-03-01&amp;to=2026-03-31" in page


def test_sla_breach_drills_to_its_conversation(world: WebWorld) -> None:
    client = login(world, "supervisor")
    page = client.get("/app/sla", params=PERIOD).text
    links = re.findall(r'class="breach-link" href="([^"]+)"', page)
    assert links, "the synthetic data has breached first responses"
    target = links[0].replace("&amp;", "&")
    conversation_id = target.split("/app/conversations/")[1].split("?")[0]
    detail = client.get(target)
    assert detail.status_code == 200 and 'id="frt-sla">breached<' in detail.text
    assert conversation_id in detail.text
    assert client.get("/app/conversations/nope", params=PERIOD).status_code == 404


def test_dashboard_is_gzipped_but_the_api_is_not(world: WebWorld) -> None:
    client = login(world, "supervisor")
    page = client.get("/app", params=PERIOD, headers={"Accept-Encoding": "gzip"})
    assert page.headers.get("content-encoding") == "gzip"
    js = client.get("/app/static/vendor/uplot/uPlot.iife.min.js", headers={"Accept-Encoding": "gzip"})
    assert js.status_code == 200 and js.headers.get("content-encoding") == "gzip"
    api = client.get("/v1/metrics/volume", params=PERIOD, headers={"Accept-Encoding": "gzip"})
    assert "content-encoding" not in api.headers


def test_new_account_without_instances_says_what_to_do_next(world: WebWorld) -> None:
    from storage.users import create_user

    create_user(world.engine, "first@c.example", PASSWORD, "admin", "acct-c")
    client = login(world, "first@c.example")
    page = client.get("/app")
    assert page.status_code == 200 and 'id="empty-account"' in page.text and "webhook" in page.text


def test_insights_page_renders_without_llm_analysis(world: WebWorld) -> None:
    client = login(world, "supervisor")
    r = client.get("/app/insights", params=PERIOD)
    assert r.status_code == 200 and "<h1>Insights</h1>" in r.text
