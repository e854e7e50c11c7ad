"""Configuring an instance through the operational API and the command line: the settings' default
zone reaches new instances, bad zones/intervals are a 422 (API) or a clear error with exit ≠ 0
(CLI), PATCH merges, PUT replaces, and ``beazap instance|team|attendant`` cover the API's set-up."""

from __future__ import annotations

import json

import pytest
import sqlalchemy as sa
from fastapi.testclient import TestClient
from typer.testing import CliRunner

from beazap.cli import app as cli
from core.settings import get_settings
from storage.tables import instances
from storage.tokens import create_token


@pytest.fixture
def api(engine, settings, monkeypatch):
    from api.app import create_app

    monkeypatch.setenv("BEAZAP_DEFAULT_TIMEZONE", "America/Manaus")
    get_settings.cache_clear()
    application = create_app(get_settings())
    application.state.engine = engine
    client = TestClient(application)
    client.headers["Authorization"] = f"Bearer {create_token(engine, 'acme', 'admin')}"
    yield client
    get_settings.cache_clear()


def test_api_uses_the_default_zone_and_rejects_bad_configuration(api: TestClient, engine: sa.Engine) -> None:
    r = api.post("/v1/instances", json={"id": "acme-1"})
    assert r.status_code == 201, r.text
    assert r.json()["timezone"] == "America/Manaus"
    with engine.connect() as conn:
        assert conn.execute(sa.select(instances.c.timezone)).scalar_one() == "America/Manaus"
    for body, needle in [
        ({"id": "acme-2", "timezone": "Mars/Olympus"}, "unknown time zone"),
        ({"id": "acme-2", "business_hours": {"weekly": {"mon": [["18:00", "08:00"]]}}}, "before closing"),
        ({"id": "acme-2", "business_hours": {"weekly": {"mon": [["08:00", "12:00"], ["10:00", "13:00"]]}}}, "overlap"),
        ({"id": "acme-2", "sla_policy": {"first_response_minutes": 10}}, "first_response_minutes"),
    ]:
        r = api.post("/v1/instances", json=body)
        assert r.status_code == 422, r.text
        assert needle in json.dumps(r.json()), r.text
    assert api.get("/v1/instances/acme-2").status_code == 404  # nothing half-written
    r = api.patch("/v1/instances/acme-1", json={"timezone": "Nowhere/Land"})
    assert r.status_code == 422 and "unknown time zone" in r.json()["error"]
    for field in ("timezone", "active"):
        r = api.patch("/v1/instances/acme-1", json={field: None})
        assert r.status_code == 422, r.text
        assert field in r.json()["error"]


def test_patch_merges_and_put_replaces(api: TestClient) -> None:
    policy = {
        "first_response": {"minutes": 30, "basis": "business"},
        "resolution": {"minutes": 600, "basis": "calendar"},
    }
    r = api.post("/v1/instances", json={"id": "acme-1", "timezone": "America/Recife", "sla_policy": policy})
    assert r.status_code == 201, r.text
    r = api.patch("/v1/instances/acme-1", json={"sla_policy": {"first_response": {"minutes": 10}}})
    assert r.status_code == 200, r.text
    got = r.json()
    assert got["sla_policy"]["first_response"] == {"minutes": 10, "basis": "business"}
    assert got["sla_policy"]["resolution"] == {"minutes": 600, "basis": "calendar"}  # not sent: kept
    assert got["timezone"] == "America/Recife"
    r = api.patch("/v1/instances/acme-1", json={"business_hours": {"holidays": ["2026-12-25"]}})
    assert r.json()["sla_policy"]["resolution"]["minutes"] == 600
    assert r.json()["business_hours"]["holidays"] == ["2026-12-25"]
    r = api.put("/v1/instances/acme-1", json={"sla_policy": {"next_reply": {"minutes": 5, "basis": "calendar"}}})
    assert r.status_code == 200, r.text
    got = r.json()
    assert got["sla_policy"] == {"next_reply": {"minutes": 5, "basis": "calendar"}}
    assert got["business_hours"] is None and got["timezone"] == "America/Manaus"  # back to the defaults
    assert api.put("/v1/instances/acme-1", json={"timezone": "Bad/Zone"}).status_code == 422
    assert api.put("/v1/instances/nope", json={}).status_code == 404


@pytest.fixture
def run(db_url: str, settings, monkeypatch):
    """``beazap …`` against the ops database of ``db_url`` (SQLite and PostgreSQL)."""
    monkeypatch.setenv("BEAZAP_DATABASE_URL", db_url)
    monkeypatch.setenv("BEAZAP_DEFAULT_TIMEZONE", "America/Recife")
    get_settings.cache_clear()
    runner = CliRunner()

    def invoke(*args: str, stdin: str | None = None):
        return runner.invoke(cli, list(args), input=stdin, env={"COLUMNS": "200"})

    yield invoke
    get_settings.cache_clear()


def test_cli_configures_an_instance(run) -> None:
    r = run("instance", "add", "loja")
    assert r.exit_code == 0, r.output
    r = run("instance", "show", "loja", "--json")
    assert r.exit_code == 0, r.output
    assert json.loads(r.output)["timezone"] == "America/Recife"  # BEAZAP_DEFAULT_TIMEZONE reached it
    r = run(
        "instance", "set", "loja", "--timezone", "America/Sao_Paulo",
        "--hours", "mon-fri 08:00-18:00", "--hours", "sat 08:00-12:00", "--holiday", "2026-12-25",
        "--sla", "first_response=30m:business", "--sla", "resolution=24h:calendar",
    )  # fmt: skip
    assert r.exit_code == 0, r.output
    shown = json.loads(run("instance", "show", "loja", "--json").output)
    eff = shown["effective"]
    assert eff["timezone"] == "America/Sao_Paulo"
    assert eff["business_hours"]["versions"][0]["weekly"]["sat"] == [["08:00", "12:00"]]
    assert "sun" not in eff["business_hours"]["versions"][0]["weekly"]
    assert eff["business_hours"]["holidays"] == ["2026-12-25"]
    assert eff["sla_policy"]["first_response"] == {"minutes": 30.0, "basis": "business"}
    assert eff["sla_policy"]["resolution"] == {"minutes": 1440.0, "basis": "calendar"}
    assert eff["sla_policy"]["next_reply"]["minutes"] == get_settings().sla_next_reply_minutes
    r = run("instance", "set", "loja", "--sla", "next_reply=2h", "--holiday", "2027-01-01")
    assert r.exit_code == 0, r.output
    eff = json.loads(run("instance", "show", "loja", "--json").output)["effective"]
    assert eff["sla_policy"]["first_response"]["minutes"] == 30  # one target set, the others kept
    assert eff["business_hours"]["holidays"] == ["2026-12-25", "2027-01-01"]
    text = run("instance", "show", "loja").output
    assert "sat  08:00-12:00" in text and "sun  closed" in text and "30 min business" in text
    assert "next_reply" in text and "2 h business" in text
    r = run(
        "instance",
        "set",
        "loja",
        "--evolution-url",
        "http://evo.local:8080",
        "--evolution-key",
        "-",
        stdin="s3cr3t-key\n",
    )
    assert r.exit_code == 0, r.output
    assert "s3cr3t" not in r.output
    shown = run("instance", "show", "loja", "--json").output
    assert "http://evo.local:8080" in shown and '"evolution_api_key_set": true' in shown and "s3cr3t" not in shown


@pytest.mark.parametrize(
    ("args", "needle"),
    [
        (("--timezone", "Mars/Olympus"), "unknown time zone"),
        (("--hours", "mon-fri 18:00-08:00"), "before closing"),
        (("--hours", "mon 08:00-12:00,11:00-13:00"), "overlap"),
        (("--hours", "someday 08:00-12:00"), "weekday"),
        (("--sla", "first_response=30x"), "CLOCK=AMOUNT"),
        (("--holiday", "25/12/2026"), "YYYY-MM-DD"),
        (("--routing", "{not json"), "not valid JSON"),
        ((), "nothing to change"),
    ],
)
def test_cli_bad_input_is_a_clear_error(run, args: tuple[str, ...], needle: str) -> None:
    assert run("instance", "add", "loja").exit_code == 0
    r = run("instance", "set", "loja", *args)
    assert r.exit_code != 0
    assert needle in r.output and "Traceback" not in r.output


def test_cli_add_rejects_a_bad_zone_and_unknown_instance(run) -> None:
    r = run("instance", "add", "loja", "--timezone", "Mars/Olympus")
    assert r.exit_code == 1 and "unknown time zone" in r.output
    r = run("instance", "show", "ghost")
    assert r.exit_code == 1 and "not found" in r.output


def test_cli_teams_and_attendants(run) -> None:
    assert run("instance", "add", "loja").exit_code == 0
    r = run("team", "create", "loja", "Suporte", "--id", "t-sup")
    assert r.exit_code == 0, r.output
    assert run("team", "create", "loja", "Vendas", "--id", "t-ven").exit_code == 0
    assert "t-sup" in run("team", "list", "--instance", "loja").output
    r = run("team", "update", "t-sup", "--name", "Suporte N1")
    assert r.exit_code == 0 and "Suporte N1" in run("team", "list").output
    r = run("attendant", "create", "loja", "Ana", "--id", "a-ana", "--team", "t-sup", "--capacity", "3")
    assert r.exit_code == 0, r.output
    listed = run("attendant", "list", "--team", "t-sup").output
    assert "a-ana" in listed and "capacity=3" in listed
    r = run("attendant", "update", "a-ana", "--team", "t-ven", "--capacity", "7", "--unavailable")
    assert r.exit_code == 0, r.output
    listed = run("attendant", "list", "--instance", "loja").output
    assert "team=t-ven" in listed and "capacity=7" in listed and "available=False" in listed
    r = run("attendant", "update", "a-ana", "--capacity", "-1")
    assert r.exit_code == 1 and "capacity" in r.output
    r = run("attendant", "create", "loja", "Bia", "--team", "t-ghost")
    assert r.exit_code == 1 and "not found" in r.output
    r = run("team", "update", "t-ghost", "--name", "x")
    assert r.exit_code == 1 and "not found" in r.output
