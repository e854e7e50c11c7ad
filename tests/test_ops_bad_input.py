"""Bad input to the operational and metrics APIs answers a clear 4xx, never a 500: NUL characters in
ids, filters, cursors and bodies are refused before any query (PostgreSQL cannot store them), and a
PATCH cannot set a non-nullable field to null."""

from __future__ import annotations

import base64
import json
from typing import Any

import pytest
from fastapi.testclient import TestClient

from api.app import create_app
from storage.tokens import create_token

NUL = "\x00"
PCT = "%00"  # a NUL in a path segment (httpx refuses a raw one in a URL)


@pytest.fixture
def client(engine: Any, settings: Any) -> tuple[TestClient, dict[str, str]]:
    app = create_app(settings)
    app.state.engine = engine
    c = TestClient(app, raise_server_exceptions=False)
    h = {"Authorization": f"Bearer {create_token(engine, 'acme', 'admin')}"}
    assert c.post("/v1/instances", json={"id": "acme-1"}, headers=h).status_code == 201
    assert c.post("/v1/teams", json={"instance_id": "acme-1", "name": "T", "id": "tm1"}, headers=h).status_code == 201
    r = c.post("/v1/attendants", json={"instance_id": "acme-1", "name": "A", "id": "at1"}, headers=h)
    assert r.status_code == 201
    return c, h


def _cursor_with_nul() -> str:
    raw = json.dumps(["2026-03-02T09:00:00+00:00", f"cv{NUL}1"]).encode()
    return base64.urlsafe_b64encode(raw).decode().rstrip("=")


NUL_REQUESTS = [
    ("GET", f"/v1/instances/acme{PCT}", None, None),
    ("GET", f"/v1/teams/tm{PCT}", None, None),
    ("GET", f"/v1/attendants/at{PCT}", None, None),
    ("GET", f"/v1/conversations/cv{PCT}", None, None),
    ("GET", f"/v1/conversations/cv{PCT}/messages", None, None),
    ("GET", "/v1/conversations", {"instance_id": f"acme{NUL}"}, None),
    ("GET", "/v1/conversations", {"team_id": f"t{NUL}"}, None),
    ("GET", "/v1/conversations", {"assignee_id": f"a{NUL}"}, None),
    ("GET", "/v1/conversations", {"cursor": f"x{NUL}"}, None),
    ("GET", "/v1/conversations", {"cursor": _cursor_with_nul()}, None),
    ("GET", "/v1/teams", {"instance_id": f"acme{NUL}"}, None),
    ("GET", "/v1/attendants", {"team_id": f"t{NUL}"}, None),
    ("GET", "/v1/sla/queue", {"instance_id": f"acme{NUL}"}, None),
    ("GET", "/v1/metrics/overview", {"instance_id": f"acme{NUL}"}, None),
    ("GET", "/v1/llm/usage", {"instance_id": f"acme{NUL}"}, None),
    ("POST", "/v1/instances", None, {"id": f"new{NUL}"}),
    ("POST", "/v1/teams", None, {"instance_id": "acme-1", "name": f"T{NUL}"}),
    ("POST", "/v1/attendants", None, {"instance_id": "acme-1", "name": "A", "email": f"a{NUL}@x"}),
    ("PATCH", "/v1/attendants/at1", None, {"name": f"B{NUL}"}),
    ("PATCH", "/v1/instances/acme-1", None, {"display_name": f"x{NUL}"}),
    ("POST", f"/v1/conversations/cv{PCT}/assign", None, {"attendant_id": "at1"}),
]


@pytest.mark.parametrize(("method", "path", "params", "body"), NUL_REQUESTS)
def test_nul_characters_are_refused_before_the_store(
    client: tuple[TestClient, dict[str, str]], method: str, path: str, params: Any, body: Any
) -> None:
    c, h = client
    r = c.request(method, path, params=params, json=body, headers=h)
    assert r.status_code == 422, (r.status_code, r.text)
    assert "NUL" in r.text
    # the store is still usable afterwards (no broken connection)
    assert c.get("/v1/instances/acme-1", headers=h).status_code == 200


@pytest.mark.parametrize(
    ("path", "field"),
    [
        ("/v1/attendants/at1", "name"),
        ("/v1/attendants/at1", "capacity"),
        ("/v1/attendants/at1", "available"),
        ("/v1/attendants/at1", "active"),
        ("/v1/teams/tm1", "name"),
        ("/v1/instances/acme-1", "timezone"),
        ("/v1/instances/acme-1", "active"),
    ],
)
def test_patch_with_null_for_a_required_field_is_422(
    client: tuple[TestClient, dict[str, str]], path: str, field: str
) -> None:
    c, h = client
    before = c.get(path, headers=h).json()
    r = c.patch(path, json={field: None}, headers=h)
    assert r.status_code == 422, (r.status_code, r.text)
    assert field in r.text and "null" in r.text
    assert c.get(path, headers=h).json() == before


def test_patch_may_clear_nullable_fields(client: tuple[TestClient, dict[str, str]]) -> None:
    c, h = client
    assert c.patch("/v1/attendants/at1", json={"team_id": "tm1"}, headers=h).json()["team_id"] == "tm1"
    r = c.patch("/v1/attendants/at1", json={"team_id": None, "email": None}, headers=h)
    assert r.status_code == 200 and r.json()["team_id"] is None
