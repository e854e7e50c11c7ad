"""Helpers for the console's conversation view tests: two accounts, attendants, users, logins.

Account ``acme`` has the instance ``acme-1`` (time zone America/Manaus, UTC-4), the team ``suporte``
with the attendants Ana and Bruno, each with a dashboard user, and a supervisor user; account
``beta`` has ``beta-1`` and a supervisor user of its own.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from typing import Any

import httpx
from sqlalchemy import Engine

from storage.tokens import create_token
from storage.users import create_user

PASSWORD = "correct horse battery"
PHONE = "5511987654321"
ZONE = "America/Manaus"
USERS = {"ana": "ana@acme.example", "bruno": "bruno@acme.example", "beta": "sup@beta.example"}


@dataclass
class ChatWorld:
    acme_token: str
    beta_token: str
    acme_hook: str  # acme-1's webhook token (the receiver's apikey)
    beta_hook: str


def build(client: httpx.Client, engine: Engine, evolution_url: str | None = None) -> ChatWorld:
    """Create both accounts through the API (``client`` is a TestClient or an httpx client on a live server)."""
    acme, beta = create_token(engine, "acme", "admin"), create_token(engine, "beta", "admin")

    def post(token: str, path: str, body: dict[str, Any]) -> dict[str, Any]:
        r = client.post(path, json=body, headers={"Authorization": f"Bearer {token}"})
        assert r.status_code == 201, r.text
        return r.json()

    instance: dict[str, Any] = {"id": "acme-1", "timezone": ZONE}
    if evolution_url:
        instance |= {"evolution_base_url": evolution_url, "evolution_api_key": "evo-key"}
    acme_hook = post(acme, "/v1/instances", instance)["webhook_token"]
    beta_hook = post(beta, "/v1/instances", {"id": "beta-1"})["webhook_token"]
    team = post(acme, "/v1/teams", {"instance_id": "acme-1", "name": "Suporte"})["id"]
    for person, name in (("ana", "Ana"), ("bruno", "Bruno")):
        post(acme, "/v1/attendants", {"instance_id": "acme-1", "id": person, "name": name, "team_id": team})
        create_user(engine, USERS[person], PASSWORD, "attendant", "acme", attendant_id=person)
    create_user(engine, USERS["beta"], PASSWORD, "supervisor", "beta")
    return ChatWorld(acme, beta, acme_hook, beta_hook)


def login(client: httpx.Client, who: str) -> None:
    form = client.get("/app/login")
    csrf = re.search(r'name="csrf" value="([^"]+)"', form.text).group(1)  # type: ignore[union-attr]
    r = client.post(
        "/app/login",
        data={"email": USERS[who], "password": PASSWORD, "csrf": csrf, "next": "/app"},
        follow_redirects=False,
    )
    assert r.status_code == 303, r.text


def page_config(html: str) -> dict[str, Any]:
    """The JSON the conversation page hands to chat.js (version, CSRF token, …)."""
    found = re.search(r'<script type="application/json" id="chat-config">(.*?)</script>', html, re.S)
    assert found, "no chat-config on the page"
    return json.loads(found.group(1))
