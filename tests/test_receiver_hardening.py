"""Receiver hardening (issue 12): no false 401 on a fresh instance or a rotated token, unparseable
authenticated bodies quarantined, capped logging of unauthenticated input, secrets kept out of bronze."""

from __future__ import annotations

import asyncio
from typing import Any

import httpx
import pytest
import sqlalchemy as sa
from fastapi import FastAPI

from bronze.redact import hash_apikey
from bronze.schema import QUARANTINE, WEBHOOK_EVENTS
from core.settings import Settings
from storage.instances import add_instance
from storage.lake import Lake
from storage.tables import instances
from tests.test_receiver import INSTANCE, TOKEN, app, envelope, run, sqlite_app, table_rows

__all__ = ["app", "sqlite_app"]  # fixtures shared with test_receiver

BURST = 200
CONCURRENCY = 32


async def burst(client: httpx.AsyncClient, bodies: list[bytes], token: str) -> list[int]:
    """POST ``bodies`` with at most CONCURRENCY requests in flight; the statuses in order."""
    gate = asyncio.Semaphore(CONCURRENCY)

    async def one(body: bytes) -> int:
        async with gate:
            response = await client.post("/webhooks/evolution", content=body, headers={"apikey": token})
            return response.status_code

    return list(await asyncio.gather(*(one(b) for b in bodies)))


def test_burst_at_registration_gets_no_false_401(app: FastAPI, engine: sa.Engine, lake: Lake) -> None:
    """A new instance's history sync starts the moment it is registered: every webhook is accepted."""
    statuses: list[int] = []

    async def scenario(client: httpx.AsyncClient) -> None:
        await asyncio.to_thread(add_instance, engine, "loja-nova", "acme", token="t-nova")
        bodies = [envelope(instance="loja-nova", data={"key": {"id": f"M{i}"}}) for i in range(BURST)]
        statuses.extend(await burst(client, bodies, "t-nova"))

    run(app, scenario)
    assert statuses.count(200) == BURST, {s: statuses.count(s) for s in set(statuses)}
    assert len(table_rows(lake, WEBHOOK_EVENTS)) == BURST


def test_burst_after_token_rotation_gets_no_false_401(app: FastAPI, engine: sa.Engine, lake: Lake) -> None:
    statuses: list[int] = []

    async def scenario(client: httpx.AsyncClient) -> None:
        first = await client.post("/webhooks/evolution", content=envelope(), headers={"apikey": TOKEN})
        assert first.status_code == 200
        from storage.secrets import hash_token

        def rotate() -> None:
            with engine.begin() as conn:
                conn.execute(
                    sa.update(instances).where(instances.c.id == INSTANCE).values(webhook_token_hash=hash_token("t-2"))
                )

        await asyncio.to_thread(rotate)
        bodies = [envelope(data={"key": {"id": f"R{i}"}}) for i in range(BURST)]
        statuses.extend(await burst(client, bodies, "t-2"))
        old = await client.post("/webhooks/evolution", content=envelope(), headers={"apikey": TOKEN})
        assert old.status_code == 401  # the previous token no longer works

    run(app, scenario)
    assert statuses.count(200) == BURST, {s: statuses.count(s) for s in set(statuses)}
    assert len(table_rows(lake, WEBHOOK_EVENTS)) == BURST + 1


def test_unknown_instances_share_paced_reloads(sqlite_app: FastAPI, settings: Settings) -> None:
    """Random instance names cannot hammer the store: a burst of misses costs a couple of reloads."""
    seen: dict[str, Any] = {}

    async def scenario(client: httpx.AsyncClient) -> None:
        cache = sqlite_app.state.receiver.credentials
        before = cache._started
        bodies = [envelope(instance=f"nope-{i}") for i in range(64)]
        seen["statuses"] = await burst(client, bodies, "x")
        seen["reloads"] = cache._started - before

    run(sqlite_app, scenario)
    assert set(seen["statuses"]) == {401}
    assert seen["reloads"] <= 3


@pytest.mark.parametrize("json_logs", [False, True])
def test_unauthenticated_input_is_logged_capped(sqlite_app: FastAPI, json_logs: bool) -> None:
    """A 200 KB instance name adds at most ~200 bytes to the log, whatever the renderer."""
    import io

    from core.logging import configure_logging

    sizes: dict[str, int] = {}

    async def scenario(client: httpx.AsyncClient) -> None:
        for label, name in (("short", "x"), ("huge", "x" * 200_000)):
            buffer = io.StringIO()
            configure_logging("INFO", json_logs, stream=buffer)
            for headers in ({"apikey": "wrong"}, {}):  # unknown instance, then known instance + no token
                await client.post("/webhooks/evolution", content=envelope(instance=name), headers=headers)
            await client.post("/webhooks/evolution", content=envelope(instance=INSTANCE), headers={"apikey": "x"})
            sizes[label] = len(buffer.getvalue().encode())
        configure_logging("INFO", False)

    run(sqlite_app, scenario)
    assert sizes["short"] > 0
    assert sizes["huge"] - sizes["short"] <= 2 * 200, sizes


GOOD = b'{"event": "messages.upsert", "instance": "loja-centro", "data": {"message": {"conversation": "ol\xc3\xa1"}}}'


@pytest.mark.parametrize(
    ("body", "headers", "reason"),
    [
        (GOOD[:-7], {"apikey": TOKEN}, "invalid_json"),  # truncated
        (GOOD.replace(b"ol\xc3\xa1", b"ol\xe1"), {"apikey": TOKEN}, "invalid_encoding"),  # latin-1
        (GOOD.replace(b"ol\xc3\xa1", b"\xff\xfe\xfd"), {"apikey": TOKEN}, "invalid_encoding"),  # not UTF-8 at all
        (GOOD.decode().encode("utf-16"), {"apikey": TOKEN}, "invalid_encoding"),  # UTF-16 with BOM
        (GOOD.decode().encode("utf-16-le"), {"authorization": f"Bearer {TOKEN}"}, "invalid_encoding"),
        (b"[1, 2]", {"apikey": TOKEN}, "not_object"),  # no instance in the body: the token names it
        (b"", {"apikey": TOKEN}, "empty_body"),
        (  # latin-1 body authenticated by its envelope apikey (global webhooks send no headers)
            b'{"event": "messages.upsert", "instance": "loja-centro", "apikey": "'
            + TOKEN.encode()
            + b'", "x": "\xe9"}',
            {},
            "invalid_encoding",
        ),
    ],
    ids=["truncated", "latin-1", "non-utf8", "utf-16-bom", "utf-16-le", "array", "empty", "envelope-apikey"],
)
def test_authenticated_unparseable_bodies_are_quarantined(
    sqlite_app: FastAPI, lake: Lake, body: bytes, headers: dict[str, str], reason: str
) -> None:
    seen: dict[str, Any] = {}

    async def scenario(client: httpx.AsyncClient) -> None:
        response = await client.post("/webhooks/evolution", content=body, headers=headers)
        seen["status"], seen["json"] = response.status_code, response.json()

    run(sqlite_app, scenario)
    assert seen["status"] == 422, seen
    assert seen["json"]["quarantined"] is True
    assert seen["json"]["reason"] == f"quarantined_{reason}"
    [row] = table_rows(lake, QUARANTINE)
    assert row["receipt_id"] == seen["json"]["receipt_id"]
    if b'"apikey"' in body:  # the envelope's apikey is stored as a keyed hash (bronze.redact)
        assert TOKEN.encode() not in row["body"]
        assert row["body"] == body.replace(TOKEN.encode(), hash_apikey(TOKEN).encode())
    else:
        assert row["body"] == body  # raw bytes, as received
    assert row["reason"] == reason
    assert row["instance"] == INSTANCE
    assert table_rows(lake, WEBHOOK_EVENTS) == []


def test_unparseable_body_with_a_wrong_token_is_400_and_not_kept(sqlite_app: FastAPI, lake: Lake) -> None:
    async def scenario(client: httpx.AsyncClient) -> None:
        response = await client.post("/webhooks/evolution", content=GOOD[:-7], headers={"apikey": "wrong"})
        assert response.status_code == 400
        assert response.json()["reason"] == "invalid_json"

    run(sqlite_app, scenario)
    assert table_rows(lake, QUARANTINE) == []


REGISTERED_UUID = "5f3c2a9e-8d41-4b7a-9a0e-1c2d3e4f5a6b"


@pytest.mark.parametrize(
    ("registered", "data", "expected"),
    [
        (REGISTERED_UUID, {"key": {"id": "A"}, "instanceId": REGISTERED_UUID}, 200),
        (REGISTERED_UUID, {"key": {"id": "A"}, "instanceId": REGISTERED_UUID.upper()}, 200),
        (REGISTERED_UUID, {"key": {"id": "A"}}, 200),  # nothing to compare
        (REGISTERED_UUID, {"key": {"id": "A"}, "instanceId": "0d9b7c1e-0000-4000-8000-000000000000"}, 422),
        (REGISTERED_UUID, [{"id": "c1", "instanceId": REGISTERED_UUID}, {"id": "c2", "instanceId": "other"}], 422),
        (REGISTERED_UUID, {"key": {"id": "A"}, "instanceId": 12}, 422),
        (None, {"key": {"id": "A"}, "instanceId": "0d9b7c1e-0000-4000-8000-000000000000"}, 200),  # none registered
    ],
    ids=["match", "case", "absent", "mismatch", "list-mismatch", "not-a-string", "unregistered"],
)
def test_instance_id_is_checked_against_the_registered_uuid(
    sqlite_app: FastAPI, lake: Lake, registered: str | None, data: Any, expected: int
) -> None:
    engine = sqlite_app.state.engine
    with engine.begin() as conn:
        conn.execute(sa.update(instances).where(instances.c.id == INSTANCE).values(evolution_instance_uuid=registered))
    seen: dict[str, Any] = {}

    async def scenario(client: httpx.AsyncClient) -> None:
        response = await client.post("/webhooks/evolution", content=envelope(data=data), headers={"apikey": TOKEN})
        seen["status"], seen["json"] = response.status_code, response.json()

    run(sqlite_app, scenario)
    assert seen["status"] == expected, seen
    if expected == 422:
        assert seen["json"]["reason"] == "quarantined_instance_id_mismatch"
        [row] = table_rows(lake, QUARANTINE)
        assert row["reason"] == "instance_id_mismatch" and row["instance"] == INSTANCE
        assert table_rows(lake, WEBHOOK_EVENTS) == []
    else:
        assert len(table_rows(lake, WEBHOOK_EVENTS)) == 1
