"""Tenant isolation of the operational API's ids: creating something with an id another tenant holds
answers exactly like creating it with an id the caller holds — nothing says who has it."""

from __future__ import annotations

from typing import Any

import pytest
from fastapi.testclient import TestClient

from api.app import create_app
from storage.tokens import create_token


@pytest.fixture
def two_tenants(engine: Any, settings: Any) -> dict[str, Any]:
    app = create_app(settings)
    app.state.engine = engine
    client = TestClient(app)
    acme = {"Authorization": f"Bearer {create_token(engine, 'acme', 'admin')}"}
    globex = {"Authorization": f"Bearer {create_token(engine, 'globex', 'admin')}"}
    for headers, inst, team, att in ((acme, "acme-1", "tm-acme", "at-acme"), (globex, "globex-1", "tm-gx", "at-gx")):
        assert client.post("/v1/instances", json={"id": inst}, headers=headers).status_code == 201
        r = client.post("/v1/teams", json={"instance_id": inst, "name": "T", "id": team}, headers=headers)
        assert r.status_code == 201, r.text
        r = client.post("/v1/attendants", json={"instance_id": inst, "name": "A", "id": att}, headers=headers)
        assert r.status_code == 201, r.text
    return {"client": client, "acme": acme, "globex": globex}


@pytest.mark.parametrize(
    ("path", "own", "foreign", "extra"),
    [
        ("/v1/instances", "globex-1", "acme-1", {}),
        ("/v1/teams", "tm-gx", "tm-acme", {"instance_id": "globex-1", "name": "X"}),
        ("/v1/attendants", "at-gx", "at-acme", {"instance_id": "globex-1", "name": "X"}),
    ],
)
def test_taken_ids_answer_the_same_whoever_holds_them(
    two_tenants: dict[str, Any], path: str, own: str, foreign: str, extra: dict[str, Any]
) -> None:
    c, h = two_tenants["client"], two_tenants["globex"]
    mine = c.post(path, json={**extra, "id": own}, headers=h)
    theirs = c.post(path, json={**extra, "id": foreign}, headers=h)
    assert mine.status_code == theirs.status_code == 409
    assert mine.json() == theirs.json()  # byte for byte: the answer cannot tell the two apart
    assert foreign not in theirs.text and "exists" not in theirs.text
    assert c.get(f"{path}/{foreign}", headers=h).status_code == 404
