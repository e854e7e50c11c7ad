"""Webhook receiver, in process: every sample lands raw, auth paths, each status code, quarantine.

The app runs with its real lifespan (bronze writers on a temp lake, credential cache over the
``engine`` fixture's SQLite/PostgreSQL ops store) behind httpx's ASGI transport.
"""

from __future__ import annotations

import asyncio
import hashlib
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import httpx
import jwt
import orjson
import pyarrow as pa
import pytest
import sqlalchemy as sa
from fastapi import FastAPI

from api.app import create_app
from bronze.receipts import receipt_time
from bronze.schema import QUARANTINE, WEBHOOK_EVENTS
from core.settings import Settings, get_settings
from storage.instances import add_instance
from storage.lake import Lake
from tests.conftest import SAMPLES_DIR

INSTANCE = "loja-centro"
TOKEN = "whk_test_token_loja_centro"
JWT_SECRET = "jwt-secret-for-loja-centro-0123456789"
CLIENT_IP = "203.0.113.7"
SAMPLES = sorted(SAMPLES_DIR.glob("*.json"))


def sample_body(name: str = "messages-upsert-text-inbound") -> bytes:
    return (SAMPLES_DIR / f"{name}.json").read_bytes()


def envelope(**fields: Any) -> bytes:
    doc: dict[str, Any] = {"event": "messages.upsert", "instance": INSTANCE, "data": {"key": {"id": "X1"}}}
    doc.update(fields)
    return orjson.dumps({k: v for k, v in doc.items() if v is not ...})


def make_jwt(secret: str = JWT_SECRET, expires_in: float = 600) -> str:
    now = int(time.time())
    return jwt.encode({"app": "evolution", "action": "webhook", "iat": now, "exp": now + expires_in}, secret, "HS256")


@asynccontextmanager
async def running(app: FastAPI) -> AsyncIterator[httpx.AsyncClient]:
    """The app with its lifespan started, and a client posting from CLIENT_IP."""
    async with app.router.lifespan_context(app):
        transport = httpx.ASGITransport(app=app, client=(CLIENT_IP, 50000))
        async with httpx.AsyncClient(transport=transport, base_url="http://beazap.test") as client:
            yield client


def run(app: FastAPI, scenario: Callable[[httpx.AsyncClient], Awaitable[None]]) -> None:
    async def main() -> None:
        async with running(app) as client:
            await scenario(client)

    asyncio.run(main())


def table_rows(lake: Lake, table: str) -> list[dict[str, Any]]:
    dt = lake.open_or_none(table)
    return [] if dt is None else pa.table(dt.to_pyarrow_table()).to_pylist()


@pytest.fixture
def app(settings: Settings, engine: sa.Engine) -> FastAPI:
    add_instance(engine, INSTANCE, "acme", token=TOKEN, jwt_secret=JWT_SECRET)
    application = create_app(settings)
    application.state.engine = engine
    return application


@pytest.fixture
def sqlite_app(settings: Settings, tmp_path: Path) -> FastAPI:
    """Same app on the SQLite store only (for tests whose subject is not the database)."""
    from storage import migrate
    from storage.db import make_engine

    eng = make_engine(f"sqlite:///{tmp_path / 'ops-sqlite.db'}")
    migrate.upgrade(eng)
    add_instance(eng, INSTANCE, "acme", token=TOKEN, jwt_secret=JWT_SECRET)
    application = create_app(settings)
    application.state.engine = eng
    return application


# --- every sample lands, raw and unchanged -----------------------------------------------------------


def test_every_sample_lands_raw_and_unchanged(sqlite_app: FastAPI, lake: Lake) -> None:
    answers: dict[str, dict[str, Any]] = {}

    async def scenario(client: httpx.AsyncClient) -> None:
        for path in SAMPLES:
            response = await client.post("/webhooks/evolution", content=path.read_bytes(), headers={"apikey": TOKEN})
            assert response.status_code == 200, (path.name, response.text)
            answers[path.name] = response.json()

    run(sqlite_app, scenario)
    rows = {row["receipt_id"]: row for row in table_rows(lake, WEBHOOK_EVENTS)}
    assert len(rows) == len(SAMPLES)
    for path in SAMPLES:
        raw = path.read_bytes()
        answer = answers[path.name]
        row = rows[answer["receipt_id"]]
        assert row["payload"].encode("utf-8") == raw  # byte for byte
        assert row["payload_hash"] == hashlib.sha256(raw).hexdigest()
        assert row["event"] == orjson.loads(raw)["event"] == answer["event"]
        assert row["instance"] == INSTANCE
        assert row["source_ip"] == CLIENT_IP
        assert row["received_date"] == row["received_at"].date()
        assert abs((receipt_time(answer["receipt_id"]) - row["received_at"]).total_seconds()) < 0.002
    ids = [answers[p.name]["receipt_id"] for p in SAMPLES]
    assert ids == sorted(ids), "receipt ids are time-ordered"


def test_by_events_urls_accept_every_sample(sqlite_app: FastAPI, lake: Lake) -> None:
    async def scenario(client: httpx.AsyncClient) -> None:
        for path in SAMPLES:
            body = path.read_bytes()
            suffix = orjson.loads(body)["event"].replace(".", "-")  # what Evolution appends with byEvents
            response = await client.post(f"/webhooks/evolution/{suffix}", content=body, headers={"apikey": TOKEN})
            assert response.status_code == 200, (suffix, response.text)

    run(sqlite_app, scenario)
    assert len(table_rows(lake, WEBHOOK_EVENTS)) == len(SAMPLES)
    assert table_rows(lake, QUARANTINE) == []


def test_duplicates_are_kept_with_the_same_hash(sqlite_app: FastAPI, lake: Lake) -> None:
    body = sample_body()

    async def scenario(client: httpx.AsyncClient) -> None:
        for _ in range(2):
            response = await client.post("/webhooks/evolution", content=body, headers={"apikey": TOKEN})
            assert response.status_code == 200

    run(sqlite_app, scenario)
    rows = table_rows(lake, WEBHOOK_EVENTS)
    assert len(rows) == 2
    assert len({r["receipt_id"] for r in rows}) == 2
    assert len({r["payload_hash"] for r in rows}) == 1


# --- authentication (SQLite and PostgreSQL stores) ------------------------------------------------


@pytest.mark.parametrize(
    ("case", "expected"),
    [
        ("apikey_header", 200),
        ("bearer_token", 200),
        ("envelope_apikey", 200),
        ("jwt", 200),
        ("jwt_expired", 401),
        ("jwt_wrong_secret", 401),
        ("jwt_without_exp", 401),
        ("wrong_token", 401),
        ("wrong_envelope_apikey", 401),
        ("no_credentials", 401),
        ("unknown_instance", 401),
    ],
)
def test_auth(app: FastAPI, lake: Lake, case: str, expected: int) -> None:
    headers: dict[str, str] = {}
    body = sample_body()
    if case == "apikey_header":
        headers["apikey"] = TOKEN
    elif case == "bearer_token":
        headers["Authorization"] = f"Bearer {TOKEN}"
    elif case == "envelope_apikey":
        body = envelope(apikey=TOKEN)
    elif case == "jwt":
        headers["Authorization"] = f"Bearer {make_jwt()}"
    elif case == "jwt_expired":
        headers["Authorization"] = f"Bearer {make_jwt(expires_in=-120)}"
    elif case == "jwt_wrong_secret":
        headers["Authorization"] = f"Bearer {make_jwt(secret='not-the-secret-of-this-instance-xx')}"
    elif case == "jwt_without_exp":
        headers["Authorization"] = "Bearer " + jwt.encode({"app": "evolution"}, JWT_SECRET, "HS256")
    elif case == "wrong_token":
        headers["apikey"] = TOKEN + "x"
    elif case == "wrong_envelope_apikey":
        body = envelope(apikey="whk_nope")
    elif case == "unknown_instance":
        headers["apikey"] = TOKEN
        body = envelope(instance="someone-else")
    seen: dict[str, Any] = {}

    async def scenario(client: httpx.AsyncClient) -> None:
        response = await client.post("/webhooks/evolution", content=body, headers=headers)
        seen["status"], seen["json"] = response.status_code, response.json()

    run(app, scenario)
    assert seen["status"] == expected, seen
    landed = table_rows(lake, WEBHOOK_EVENTS)
    if expected == 200:
        assert [r["receipt_id"] for r in landed] == [seen["json"]["receipt_id"]]
    else:
        assert landed == []
        assert "error" in seen["json"]
        if case == "jwt_expired":
            assert seen["json"]["reason"] == "expired_jwt"


def test_instance_added_after_start_is_accepted(app: FastAPI, engine: sa.Engine, lake: Lake) -> None:
    """An unknown instance triggers one reload of the credentials before the 401."""

    async def scenario(client: httpx.AsyncClient) -> None:
        body = envelope(instance="loja-nova")
        assert (await client.post("/webhooks/evolution", content=body, headers={"apikey": "t-nova"})).status_code == 401
        await asyncio.to_thread(add_instance, engine, "loja-nova", "acme", token="t-nova")
        deadline = time.monotonic() + 10
        status = 0
        while time.monotonic() < deadline:  # the miss reload is rate-limited (1 s)
            status = (await client.post("/webhooks/evolution", content=body, headers={"apikey": "t-nova"})).status_code
            if status == 200:
                break
            await asyncio.sleep(0.1)
        assert status == 200

    run(app, scenario)
    assert [r["instance"] for r in table_rows(lake, WEBHOOK_EVENTS)] == ["loja-nova"]


def test_database_outage_does_not_stop_known_instances(sqlite_app: FastAPI, lake: Lake) -> None:
    """Credentials are cached: with the ops store unreachable, known instances are still accepted;
    unknown ones get 503 (retryable), not 401, because they could not be checked."""
    dead = sa.create_engine("postgresql+psycopg://nobody@127.0.0.1:1/none", connect_args={"connect_timeout": 1})

    async def scenario(client: httpx.AsyncClient) -> None:
        receiver = sqlite_app.state.receiver
        sqlite_app.state.engine = dead
        assert not await receiver.credentials.refresh()  # the reload fails, the cache stays
        ok = await client.post("/webhooks/evolution", content=sample_body(), headers={"apikey": TOKEN})
        assert ok.status_code == 200
        unknown = await client.post("/webhooks/evolution", content=envelope(instance="x"), headers={"apikey": TOKEN})
        assert unknown.status_code == 503
        assert unknown.headers["retry-after"]

    run(sqlite_app, scenario)
    assert len(table_rows(lake, WEBHOOK_EVENTS)) == 1


# --- status codes ---------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("body", "reason"),
    [
        (b"", "empty_body"),
        (b"not json", "invalid_json"),
        (b"\xff\xfe{}", "invalid_json"),
        (b"[1, 2]", "not_object"),
        (envelope(event=...), "missing_event"),
        (envelope(event=12), "missing_event"),
        (envelope(instance=...), "missing_instance"),
        (envelope(instance=""), "missing_instance"),
    ],
)
def test_400_for_unattributable_bodies(sqlite_app: FastAPI, lake: Lake, body: bytes, reason: str) -> None:
    """Unreadable and not authenticated (authenticated ones are quarantined: test_receiver_hardening)."""
    seen: dict[str, Any] = {}

    async def scenario(client: httpx.AsyncClient) -> None:
        response = await client.post("/webhooks/evolution", content=body, headers={"apikey": "not-a-token"})
        seen["status"], seen["json"] = response.status_code, response.json()

    run(sqlite_app, scenario)
    assert seen["status"] == 400
    assert seen["json"]["reason"] == reason
    assert seen["json"]["error"]
    assert table_rows(lake, WEBHOOK_EVENTS) == []


def test_413_over_the_size_limit(settings: Settings, sqlite_app: FastAPI, lake: Lake) -> None:
    limit = settings.max_body_bytes
    big = envelope(data={"pad": "x" * limit})

    async def chunks() -> AsyncIterator[bytes]:  # no Content-Length: the limit applies while reading
        for start in range(0, len(big), 65536):
            yield big[start : start + 65536]

    async def scenario(client: httpx.AsyncClient) -> None:
        declared = await client.post("/webhooks/evolution", content=big, headers={"apikey": TOKEN})
        assert declared.status_code == 413
        assert declared.json()["reason"] == "too_large"
        streamed = await client.post("/webhooks/evolution", content=chunks(), headers={"apikey": TOKEN})
        assert streamed.status_code == 413
        just_fits = envelope(data={"pad": "x" * (limit - 200)})
        assert len(just_fits) <= limit
        ok = await client.post("/webhooks/evolution", content=just_fits, headers={"apikey": TOKEN})
        assert ok.status_code == 200

    run(sqlite_app, scenario)
    assert len(table_rows(lake, WEBHOOK_EVENTS)) == 1


@pytest.mark.parametrize(
    ("path", "body", "reason"),
    [
        ("/webhooks/evolution/messages-update", sample_body(), "event_suffix_mismatch"),
        ("/webhooks/evolution", envelope(data=...), "missing_data"),
        ("/webhooks/evolution", envelope(data="text"), "invalid_data"),
        ("/webhooks/evolution", envelope(event="messages upsert; drop"), "invalid_event_name"),
    ],
)
def test_422_quarantines_authenticated_malformed_payloads(
    sqlite_app: FastAPI, lake: Lake, path: str, body: bytes, reason: str
) -> None:
    seen: dict[str, Any] = {}

    async def scenario(client: httpx.AsyncClient) -> None:
        response = await client.post(path, content=body, headers={"apikey": TOKEN})
        seen["status"], seen["json"] = response.status_code, response.json()

    run(sqlite_app, scenario)
    assert seen["status"] == 422
    assert seen["json"]["quarantined"] is True
    assert table_rows(lake, WEBHOOK_EVENTS) == []
    [row] = table_rows(lake, QUARANTINE)
    assert row["receipt_id"] == seen["json"]["receipt_id"]
    assert row["reason"] == reason
    assert row["body"] == body  # raw bytes, as received
    assert row["instance"] == INSTANCE
    assert row["source_ip"] == CLIENT_IP


def test_unauthenticated_malformed_payload_is_401_not_quarantined(sqlite_app: FastAPI, lake: Lake) -> None:
    async def scenario(client: httpx.AsyncClient) -> None:
        response = await client.post("/webhooks/evolution", content=envelope(data=...), headers={"apikey": "bad"})
        assert response.status_code == 401

    run(sqlite_app, scenario)
    assert table_rows(lake, QUARANTINE) == []


def test_503_when_the_lake_cannot_be_written(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    """A lake root that cannot be a directory (a file is there) — like a full or read-only disk."""
    blocker = tmp_path / "not-a-dir"
    blocker.write_text("occupied")
    monkeypatch.setenv("BEAZAP_LAKE_URI", str(blocker / "lake"))
    monkeypatch.setenv("BEAZAP_DATABASE_URL", f"sqlite:///{tmp_path / 'ops.db'}")
    monkeypatch.setenv("BEAZAP_SECRET_KEY_FILE", str(tmp_path / "secret.key"))
    get_settings.cache_clear()
    from storage import migrate
    from storage.db import make_engine

    eng = make_engine(f"sqlite:///{tmp_path / 'ops.db'}")
    migrate.upgrade(eng)
    add_instance(eng, INSTANCE, "acme", token=TOKEN)
    app = create_app(get_settings())
    app.state.engine = eng

    async def scenario(client: httpx.AsyncClient) -> None:
        response = await client.post("/webhooks/evolution", content=sample_body(), headers={"apikey": TOKEN})
        assert response.status_code == 503
        assert response.json()["reason"] == "lake_unavailable"
        assert response.headers["retry-after"]
        quarantined = await client.post("/webhooks/evolution", content=envelope(data=...), headers={"apikey": TOKEN})
        assert quarantined.status_code == 503  # the quarantine is in the lake too: never a 4xx
        ready = await client.get("/readyz")
        assert ready.status_code == 503
        assert ready.json()["lake"] == "unavailable"
        assert (await client.get("/healthz")).status_code == 200

    try:
        run(app, scenario)
    finally:
        get_settings.cache_clear()


# --- concurrency, health, metrics ---------------------------------------------------------------


def test_group_commit_under_concurrency(sqlite_app: FastAPI, lake: Lake) -> None:
    """Many concurrent requests share commits; every acknowledged row is in bronze."""
    n = 200
    acked: list[str] = []

    async def scenario(client: httpx.AsyncClient) -> None:
        async def one(i: int) -> None:
            body = envelope(data={"key": {"id": f"M{i}"}})
            response = await client.post("/webhooks/evolution", content=body, headers={"apikey": TOKEN})
            assert response.status_code == 200
            acked.append(response.json()["receipt_id"])

        await asyncio.gather(*(one(i) for i in range(n)))
        stats = sqlite_app.state.receiver.events.stats
        assert stats.rows == n
        assert stats.commits < n / 4, stats  # shared commits, not one per request

    run(sqlite_app, scenario)
    rows = table_rows(lake, WEBHOOK_EVENTS)
    assert sorted(r["receipt_id"] for r in rows) == sorted(acked)
    assert len(set(acked)) == n
    assert lake.version(WEBHOOK_EVENTS) < n / 4 + 1


def test_health_ready_and_metrics(sqlite_app: FastAPI) -> None:
    async def scenario(client: httpx.AsyncClient) -> None:
        assert (await client.get("/healthz")).json() == {"status": "ok"}
        ready = await client.get("/readyz")
        assert ready.status_code == 200
        assert ready.json()["lake"] == "ok"
        assert ready.json()["credentials"] == "ok"
        before = await client.get("/metrics")
        await client.post("/webhooks/evolution", content=sample_body("call-offer"), headers={"apikey": TOKEN})
        await client.post("/webhooks/evolution", content=b"{", headers={"apikey": TOKEN})
        after = (await client.get("/metrics")).text
        assert before.status_code == 200
        assert (
            metric(after, 'beazap_webhooks_received_total{event="call"}')
            == metric(before.text, 'beazap_webhooks_received_total{event="call"}') + 1
        )
        assert metric(after, 'beazap_webhooks_rejected_total{reason="invalid_json"}') >= 1
        assert metric(after, 'beazap_bronze_commit_seconds_count{outcome="ok",table="bronze/webhook_events"}') >= 1
        assert metric(after, 'beazap_bronze_batch_rows_count{table="bronze/webhook_events"}') >= 1

    run(sqlite_app, scenario)


def metric(text: str, name: str) -> float:
    for line in text.splitlines():
        if line.startswith(name + " "):
            return float(line.rsplit(" ", 1)[1])
    return 0.0


def test_receiver_disabled(settings: Settings, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("BEAZAP_RECEIVER_ENABLED", "false")
    get_settings.cache_clear()
    app = create_app(get_settings())

    async def scenario(client: httpx.AsyncClient) -> None:
        response = await client.post("/webhooks/evolution", content=sample_body(), headers={"apikey": TOKEN})
        assert response.status_code == 503
        assert (await client.get("/readyz")).json()["receiver"] == "disabled"

    run(app, scenario)


def test_fast_path_answers_like_the_fastapi_routes(sqlite_app: FastAPI, settings: Settings, lake: Lake) -> None:
    """The webhook fast path (ASGI middleware) and the documented FastAPI routes behave the same."""
    from api.routes.webhooks import WebhookFastPath

    assert any(m.cls is WebhookFastPath for m in sqlite_app.user_middleware)
    routes_only = create_app(settings)
    routes_only.state.engine = sqlite_app.state.engine
    routes_only.user_middleware = [m for m in routes_only.user_middleware if m.cls is not WebhookFastPath]
    cases = [
        ("/webhooks/evolution", sample_body(), {"apikey": TOKEN}),
        ("/webhooks/evolution/messages-upsert", sample_body(), {"apikey": TOKEN}),
        ("/webhooks/evolution", sample_body(), {"apikey": "wrong"}),
        ("/webhooks/evolution", b"not json", {"apikey": "wrong"}),
        ("/webhooks/evolution", b"not json", {"apikey": TOKEN}),  # authenticated: quarantined, 422
        ("/webhooks/evolution/connection-update", sample_body(), {"apikey": TOKEN}),  # suffix contradicts: 422
        ("/webhooks/evolution/a/b", sample_body(), {"apikey": TOKEN}),  # not a webhook URL: FastAPI's 404
    ]
    answers: dict[str, list[tuple[int, set[str]]]] = {}
    for name, application in (("fast", sqlite_app), ("routes", routes_only)):

        async def scenario(client: httpx.AsyncClient, name: str = name) -> None:
            answers[name] = []
            for path, body, headers in cases:
                response = await client.post(path, content=body, headers=headers)
                answers[name].append((response.status_code, set(response.json())))

        run(application, scenario)
    assert answers["fast"] == answers["routes"]
    assert [status for status, _ in answers["fast"]] == [200, 200, 401, 400, 422, 422, 404]
    paths = sqlite_app.openapi()["paths"]
    assert "/webhooks/evolution" in paths and "/webhooks/evolution/{event_suffix}" in paths
    assert len(table_rows(lake, WEBHOOK_EVENTS)) == 4  # two accepted per app
