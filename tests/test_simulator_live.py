"""``beazap simulate --post --live``: a live window played against the real app on loopback (receiver,
operational API, projector): afterwards the live store's assignments and resolutions equal the
simulator's ground truth, 409s are re-read and retried, and a bad token stops the run with a message."""

from __future__ import annotations

import asyncio
import re
import threading
from datetime import UTC, datetime
from typing import Any
from zoneinfo import ZoneInfo

import pytest
from sqlalchemy import text, update
from typer.testing import CliRunner

from beazap.simulator import GroundTruth, SimulationConfig, register_instances, simulate
from beazap.simulator.live import (
    LiveError,
    Outcome,
    apply_outcomes,
    areplay,
    live_window,
    planned_actions,
    replay,
    steady_rate,
)
from beazap.simulator.world import HOUR_PROFILE
from core.settings import get_settings
from live.projector import run_once
from storage.tables import conversations
from storage.tokens import create_token
from tests.console_support import LiveServer, poll

FIELDS = ("status", "assignee_id", "team_id", "resolved_by", "resolved_at", "first_assigned_at")


@pytest.fixture
def served(engine, lake, settings):
    """The app on loopback plus a projector loop (what `beazap serve` + `beazap worker` run)."""
    settings.instance_cache_refresh_seconds = 0.2
    server = LiveServer(engine, settings)
    base = server.start()
    stop = threading.Event()

    def work() -> None:
        while not stop.is_set():
            run_once(lake, engine)
            stop.wait(0.05)  # the worker's poll interval

    worker = threading.Thread(target=work, daemon=True)
    worker.start()
    yield base
    stop.set()
    worker.join(timeout=30)
    server.stop()


def _busy_zone(now: datetime) -> str:
    """A fixed-offset zone where it is now Monday–Saturday at the busiest such hour."""
    zones = [f"Etc/GMT{-o:+d}" if o else "Etc/GMT" for o in range(-12, 15)]
    weekday = [z for z in zones if now.astimezone(ZoneInfo(z)).weekday() < 6]
    return max(weekday, key=lambda z: HOUR_PROFILE[now.astimezone(ZoneInfo(z)).hour])


def _sim(seconds: float = 15.0, seed: int = 11, per_second: float = 4.0) -> Any:
    now = datetime.now(UTC)
    zone, pace = _busy_zone(now), 120.0
    cfg = SimulationConfig(
        seed=seed,
        instances=2,
        instances_per_account=2,  # one account: one API token acts on both
        timezones=(zone,),
        business_open_hour=0,  # whatever the hour: attendants at work, customers arriving
        business_close_hour=24,
        saturday_close_hour=24,
        conversations_per_day=steady_rate(per_second, pace, zone, now.timestamp()),
        pace=pace,
        window=live_window(seconds, lead=3.0),
    )
    return simulate(cfg)


def _store(engine, ids: list[str]) -> dict[str, dict[str, Any]]:
    with engine.connect() as conn:
        rows = conn.execute(
            text(
                "select id, status, assignee_id, team_id, resolved_by, resolved_at, first_assigned_at "
                "from conversations where instance_id in ('" + "','".join(ids) + "')"
            )
        ).mappings()
        return {r["id"]: dict(r) for r in rows}


def _same(a: Any, b: Any) -> bool:
    """Equal; instants (datetime or ISO text, naive = UTC) within 10 ms."""
    a, b = _instant(a), _instant(b)
    if isinstance(a, float) and isinstance(b, float):
        return abs(a - b) < 0.01
    return a == b


def _instant(value: Any) -> Any:
    if isinstance(value, str):
        try:
            value = datetime.fromisoformat(value)
        except ValueError:
            return value
    if isinstance(value, datetime):
        return (value if value.tzinfo else value.replace(tzinfo=UTC)).timestamp()
    return value


def _diff(engine, sim) -> list[str]:
    store = _store(engine, [i.id for i in sim.instances])
    out = []
    for c in sim.ground_truth.conversations:
        got = store.get(c.conversation_id)
        if got is None:
            out.append(f"{c.conversation_id}: missing in the store")
            continue
        for f in FIELDS:
            if not _same(got[f], getattr(c, f)):
                out.append(f"{c.conversation_id}.{f}: store {got[f]!r}, truth {getattr(c, f)!r}")
    return out


def test_live_replay_store_equals_ground_truth(engine, served):
    sim = _sim()
    register_instances(engine, sim)
    token = create_token(engine, sim.instances[0].account_id, "agent")
    planned = planned_actions(sim)
    assert {r["action"] for r in planned} >= {"assign", "resolve"}, "the window must hold actions to check"

    bumped: list[str] = []

    def concurrent_change(cid: str) -> None:  # a concurrent writer moves the version of the first three
        if len(bumped) < 3 and cid not in bumped:
            bumped.append(cid)
            with engine.begin() as conn:
                conn.execute(
                    update(conversations).where(conversations.c.id == cid).values(version=conversations.c.version + 1)
                )

    report = replay(served, sim, [token], before_action=concurrent_change)
    summary = report.summary()
    assert summary["failed"] == 0, summary
    assert summary["conflicts"] >= 3, summary  # each bump answered 409 …
    assert summary["actions_done"] >= len(planned) - summary["actions_refused"] - summary["actions_missing"]
    assert summary["actions_missing"] == 0, summary
    assert summary["actions_done"] > 0
    apply_outcomes(sim, report.outcomes)

    last = max(d.received_at for d in sim.deliveries)
    poll(lambda: not _diff(engine, sim), timeout=60, what=f"store equals truth (webhooks up to {last})")
    resolved = [c for c in sim.ground_truth.conversations if c.status == "resolved"]
    assigned = [c for c in sim.ground_truth.conversations if c.assignee_id]
    assert resolved and assigned  # … and was retried: the bumped conversations still match the truth


def test_apply_outcomes_drops_refused_and_moves_done_actions():
    sim = _sim(seconds=20, seed=3)
    planned = planned_actions(sim)
    assign = next(r for r in planned if r["action"] == "assign")
    resolve = next(r for r in planned if r["action"] == "resolve")
    later = resolve["occurred_at"].timestamp() + 1.25

    apply_outcomes(sim, {assign["action_id"]: Outcome("refused"), resolve["action_id"]: Outcome("done", later)})
    rows = {r["action_id"]: r for r in sim.ops_events}
    assert assign["action_id"] not in rows
    assert rows[resolve["action_id"]]["occurred_at"].timestamp() == pytest.approx(later)
    conv = sim.ground_truth.conversation_by_id()[resolve["conversation_id"]]
    assert conv.resolved_at is not None and conv.resolved_at.timestamp() == pytest.approx(later)


def test_bad_token_stops_with_a_message(engine, served):
    sim = _sim(seconds=5)
    register_instances(engine, sim)
    with pytest.raises(LiveError, match="refused the token"):
        replay(served, sim, ["bz_not_a_token"])


def _cli(args: list[str]) -> Any:
    from beazap.cli import app

    return CliRunner().invoke(app, ["simulate", *args])


def _private(output: str, *secrets: str) -> None:
    """No API or webhook token, no phone number in what the CLI printed."""
    for secret in secrets:
        assert secret not in output
    assert "whk_sim_" not in output
    assert not re.search(r"\+?55\d{10,11}", output)


def test_cli_live_run_bad_token_and_good_token(engine, served, db_url, monkeypatch, tmp_path):
    monkeypatch.setenv("BEAZAP_DATABASE_URL", db_url)  # the CLI registers instances where the app reads them
    get_settings.cache_clear()
    args = ["--post", served, "--live", "--minutes", "0.1", "--rate", "120", "--instances", "1", "--seed", "5"]
    bad = "bz_wrong_token_value_123"
    res = _cli([*args, "--api-token", bad])
    assert res.exit_code != 0
    assert "refused the token" in res.output
    _private(res.output, bad)

    token = create_token(engine, "acct-01", "agent")
    monkeypatch.setenv("BEAZAP_API_TOKEN", token)
    res = _cli([*args, "--out-dir", str(tmp_path / "out")])
    assert res.exit_code == 0, res.output
    assert "actions done" in res.output
    truth = GroundTruth.from_json(tmp_path / "out" / "ground_truth.json")
    assert truth.config["window"] is not None and truth.config["pace"] == 120
    _private(res.output, token)


def test_cli_live_needs_post_and_a_reachable_receiver(settings):
    res = _cli(["--live", "--minutes", "0.1"])
    assert res.exit_code != 0 and "--post" in res.output
    token = "bz_secret_value_that_must_not_show"
    res = _cli(["--live", "--minutes", "0.1", "--post", "http://127.0.0.1:9", "--api-token", token])
    assert res.exit_code != 0
    assert "not reachable" in res.output
    _private(res.output, token)


def test_stop_ends_the_run_cleanly(engine, served):
    """What Ctrl-C does (it sets the stop event): the items in flight finish, nothing more is sent."""
    sim = _sim(seconds=10)
    register_instances(engine, sim)
    token = create_token(engine, sim.instances[0].account_id, "agent")
    stop: dict[str, asyncio.Event] = {}
    sent: list[int] = []

    def progress(n: int) -> None:
        sent.append(n)
        if len(sent) == 20:
            stop["event"].set()

    async def main() -> Any:
        stop["event"] = asyncio.Event()
        return await areplay(served, sim, [token], progress=progress, stop=stop["event"])

    report = asyncio.run(main())
    assert report.stopped
    assert 20 <= report.posted + len(report.outcomes) < len(sim.deliveries) + len(planned_actions(sim))
