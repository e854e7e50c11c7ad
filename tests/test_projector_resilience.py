"""The worker rides out transient lake read errors, and a stuck projector shows in ``/readyz`` and in
``beazap_projector_lag_seconds`` (issue 12, item 1)."""

from __future__ import annotations

import asyncio
import threading
import time
from collections.abc import Callable

import httpx
import pytest
import sqlalchemy as sa
from deltalake.exceptions import DeltaError

from api.app import create_app
from core.settings import Settings
from live import projector as projector_module
from live.projector import WEBHOOK_CURSOR, run_forever, run_once
from storage.instances import add_instance
from storage.lake import Lake
from storage.tables import messages, projector_cursors
from tests.ops_helpers import BASE_TS, msg, write_webhooks
from tests.test_receiver import CLIENT_IP, INSTANCE, TOKEN, envelope

GAP = "Generic DeltaTable error: Expected contiguous commit files, but found gap"


def _cursor(engine: sa.Engine) -> int:
    with engine.connect() as conn:
        v = conn.execute(
            sa.select(projector_cursors.c.version).where(projector_cursors.c.name == WEBHOOK_CURSOR)
        ).scalar()
    return -1 if v is None else int(v)


def _wait(predicate: Callable[[], bool], timeout: float = 60.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return
        time.sleep(0.05)  # polling a condition against a deadline
    raise AssertionError("condition not reached before the deadline")


def test_worker_survives_transient_lake_read_errors(
    lake: Lake, engine: sa.Engine, settings: Settings, monkeypatch: pytest.MonkeyPatch
) -> None:
    add_instance(engine, "o", "acct")
    real_load = projector_module.Projector._load
    failures = {"left": 3, "raised": 0}

    def flaky_load(self, table, start, end, columns):  # type: ignore[no-untyped-def]
        if failures["left"] > 0:  # what a reader sees while receivers append concurrently
            failures["left"] -= 1
            failures["raised"] += 1
            raise DeltaError(GAP)
        return real_load(self, table, start, end, columns)

    monkeypatch.setattr(projector_module.Projector, "_load", flaky_load)
    stop = threading.Event()
    errors: list[BaseException] = []

    def work() -> None:
        try:
            run_forever(lake, engine, settings=settings, stop=stop.is_set)
        except BaseException as exc:
            errors.append(exc)

    write_webhooks(lake, [msg("o", f"m{i}", BASE_TS + i, phone=f"5511900000{i:03d}") for i in range(5)])
    worker = threading.Thread(target=work, daemon=True)
    worker.start()
    try:
        _wait(lambda: bool(errors) or _cursor(engine) >= (lake.version("bronze/webhook_events") or 0))
        assert not errors, errors
        failures["left"] = 2  # and again later, after it caught up once
        write_webhooks(lake, [msg("o", f"n{i}", BASE_TS + 100 + i, phone=f"5511900001{i:03d}") for i in range(5)])
        _wait(lambda: bool(errors) or _cursor(engine) >= (lake.version("bronze/webhook_events") or 0))
        assert not errors, errors
        assert worker.is_alive()
    finally:
        stop.set()
        worker.join(timeout=30)
    assert failures["raised"] == 5
    with engine.connect() as conn:
        assert conn.execute(sa.select(sa.func.count()).select_from(messages)).scalar() == 10


def test_readyz_and_gauge_report_a_stuck_projector(settings: Settings, engine: sa.Engine, lake: Lake) -> None:
    add_instance(engine, INSTANCE, "acme", token=TOKEN)
    app = create_app(settings.model_copy(update={"projector_stuck_seconds": 0.5}))
    app.state.engine = engine
    seen: dict[str, object] = {}

    async def scenario() -> None:
        async with app.router.lifespan_context(app):
            transport = httpx.ASGITransport(app=app, client=(CLIENT_IP, 50000))
            async with httpx.AsyncClient(transport=transport, base_url="http://beazap.test") as client:
                await asyncio.to_thread(run_once, lake, engine)  # a worker that is caught up
                first = (await client.get("/readyz")).json()
                seen["caught_up"] = first["projector"]
                ok = await client.post("/webhooks/evolution", content=envelope(), headers={"apikey": TOKEN})
                assert ok.status_code == 200
                deadline = time.monotonic() + 30
                while (ready := (await client.get("/readyz")).json())["projector"]["status"] != "stuck":
                    assert time.monotonic() < deadline, ready
                    await asyncio.sleep(0.2)  # polling the reported status against a deadline
                seen["stuck"] = ready
                strict = await client.get("/readyz", params={"strict": "true"})
                seen["strict"] = (strict.status_code, strict.json())
                seen["metrics"] = (await client.get("/metrics")).text
                await asyncio.to_thread(run_once, lake, engine)  # the worker catches up
                deadline = time.monotonic() + 30
                while (ready := (await client.get("/readyz")).json())["projector"]["status"] != "ok":
                    assert time.monotonic() < deadline, ready
                    await asyncio.sleep(0.2)
                seen["recovered"] = ready

    asyncio.run(scenario())
    assert seen["caught_up"]["status"] == "ok"  # type: ignore[index]
    stuck = seen["stuck"]
    assert stuck["status"] == "ok"  # type: ignore[index]  # the receiver itself stays ready
    assert stuck["projector"]["lag_seconds"] > 0.5  # type: ignore[index]
    assert stuck["projector"]["versions_behind"] >= 1  # type: ignore[index]
    status, body = seen["strict"]  # type: ignore[misc]
    assert status == 503 and body["error"] == "the live projector is stuck"
    lag = [line for line in str(seen["metrics"]).splitlines() if line.startswith("beazap_projector_lag_seconds")]
    assert lag and float(lag[0].split()[-1]) > 0.5
    assert seen["recovered"]["projector"]["lag_seconds"] == 0  # type: ignore[index]
