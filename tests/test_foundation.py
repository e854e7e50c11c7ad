"""Foundation: settings, identity helpers, migrations on SQLite and PostgreSQL, token auth."""

from __future__ import annotations

import io
import json

import pytest
import sqlalchemy as sa

from core.identity import chat_type, conversation_id, normalize_phone
from core.logging import configure_logging, get_logger
from storage import migrate
from storage.instances import add_instance, load_credentials
from storage.secrets import token_matches
from storage.tokens import create_token, resolve_token


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        ("5511987654321@s.whatsapp.net", "+5511987654321"),
        ("551187654321@s.whatsapp.net", "+5511987654321"),  # BR mobile without the 9th digit
        ("5511940001111:12@s.whatsapp.net", "+5511940001111"),  # device suffix
        ("+1 415 555 2671", "+14155552671"),
        ("204519873310452@lid", None),
        ("120363041234567890@g.us", None),
        ("123", None),
        (None, None),
    ],
)
def test_normalize_phone(raw: str | None, expected: str | None) -> None:
    assert normalize_phone(raw) == expected


def test_chat_type_and_conversation_id() -> None:
    assert chat_type("1203@g.us") == "group"
    assert chat_type("status@broadcast") == "broadcast"
    assert chat_type("2045@lid") == "direct"
    a = conversation_id("i", "+5511987654321", "m1")
    assert a == conversation_id("i", "+5511987654321", "m1") and a != conversation_id("i", "+5511987654321", "m2")


def test_migrations_match_models_and_credentials_roundtrip(engine: sa.Engine) -> None:
    assert migrate.drift(engine) == []
    token = add_instance(engine, "loja-a", "acme", jwt_secret="jwt-s3cret")
    creds = load_credentials(engine)
    assert set(creds) == {"loja-a"}
    assert token_matches(token, creds["loja-a"].webhook_token_hash)
    assert not token_matches(token + "x", creds["loja-a"].webhook_token_hash)
    assert creds["loja-a"].jwt_secret == "jwt-s3cret"
    with engine.connect() as conn:
        stored = conn.execute(sa.text("select webhook_token_hash, jwt_secret_encrypted from instances")).one()
    assert token not in stored and "jwt-s3cret" not in stored[1]


def test_api_token_scope_lists_only_own_instances(engine: sa.Engine) -> None:
    add_instance(engine, "a-1", "acme")
    add_instance(engine, "b-1", "globex")
    token = create_token(engine, "acme", "read-only")
    scope = resolve_token(engine, token)
    assert scope is not None and scope.instance_ids == frozenset({"a-1"}) and not scope.can_write
    assert resolve_token(engine, token + "x") is None


def test_logs_mask_phones_text_and_secrets() -> None:
    stream = io.StringIO()
    configure_logging(json=True, stream=stream)
    get_logger("t").info(
        "inbound from 5511987654321@s.whatsapp.net",
        apikey="whk_supersecret",
        text="meu CPF e pedido 4821",
        phone="+55 11 98765-4321",
        data={"message": {"conversation": "oi"}},
    )
    line = json.loads(stream.getvalue().strip().splitlines()[-1])
    out = json.dumps(line)
    for secret in ("5511987654321", "98765-4321", "whk_supersecret", "meu CPF", '"oi"'):
        assert secret not in out
    assert line["apikey"] == "[redacted]" and line["text"] == "[masked]"


def test_every_http_error_is_json(settings) -> None:  # type: ignore[no-untyped-def]
    from fastapi.testclient import TestClient

    from api.app import create_app

    client = TestClient(create_app(settings))
    unknown = client.get("/no-such-route")
    assert unknown.status_code == 404 and unknown.json() == {"error": "Not Found"}
    wrong_method = client.delete("/healthz")
    assert wrong_method.status_code == 405 and "error" in wrong_method.json()
    unauthenticated = client.get("/v1/metrics/overview")
    assert unauthenticated.status_code == 401 and unauthenticated.json()["error"]
