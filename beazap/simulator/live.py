"""Live replay (``beazap simulate --post URL --live``): a simulated window that starts now, played at
real pace against a running BeaZap — webhooks to the receiver and attendants' actions through the
operational API, each at its time — so the live queue moves and the ground truth stays true.

- the window's traffic is generated with wall-clock times (``SimulationConfig.window``), so the
  webhooks carry the times they are posted at;
- each session action (assign, transfer, unassign, resolve, reopen) goes through ``/v1`` with a
  bearer token, as the console does: read the conversation (waiting until the projector has applied
  the messages before the action), post the action with ``If-Match: <version>``; a 409 re-reads it
  and retries while the version moved (a concurrent change), and counts the action as refused when
  the conversation itself refuses it;
- the operational API stamps an action with its own clock, so afterwards :func:`apply_outcomes`
  moves each action of the timeline to the time the store recorded (drops the refused ones) and
  rebuilds the ground truth: it describes what was actually done.
"""

from __future__ import annotations

import asyncio
import bisect
import contextlib
import logging
import signal
import time
from collections import Counter
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any
from zoneinfo import ZoneInfo

from beazap.simulator.generate import SESSION_ACTIONS, build_truth
from beazap.simulator.model import Delivery, Simulation
from beazap.simulator.world import DAY_FACTOR, HOUR_PROFILE
from core.logging import get_logger

log = get_logger(__name__)

ACTION_RETRIES = 6


class LiveError(Exception):
    """The run cannot go on (receiver or API unreachable, token refused); the message is safe to print."""


@dataclass
class Outcome:
    """What became of one planned action."""

    status: str  # done | refused | missing
    stamp: float | None = None  # epoch seconds the store recorded (done only)


@dataclass
class LiveReport:
    posted: int = 0
    statuses: Counter[str] = field(default_factory=Counter)
    outcomes: dict[str, Outcome] = field(default_factory=dict)
    conflicts: int = 0  # 409 answers (each re-read, then retried or counted as refused)
    stopped: bool = False

    def summary(self) -> dict[str, Any]:
        done = Counter(o.status for o in self.outcomes.values())
        accepted = sum(n for code, n in self.statuses.items() if code.startswith("2"))
        return {
            "posted": self.posted,
            "accepted": accepted,
            "failed": self.posted - accepted,
            "statuses": dict(sorted(self.statuses.items())),
            "actions_done": done["done"],
            "actions_refused": done["refused"],
            "actions_missing": done["missing"],
            "conflicts": self.conflicts,
            "stopped": self.stopped,
        }


def live_window(seconds: float, *, lead: float = 2.0, now: float | None = None) -> tuple[float, float]:
    """``[from, to)`` of a live run of ``seconds`` starting ``lead`` seconds from now (whole seconds)."""
    start = float(int((time.time() if now is None else now) + lead) + 1)
    return start, start + seconds


def steady_rate(per_second: float, pace: float, timezone: str, now: float | None = None) -> float:
    """The ``conversations_per_day`` that gives about ``per_second`` new conversations per instance right
    now in ``timezone`` (traffic follows the hour and weekday profile; arrivals scale with ``pace``)."""
    local = datetime.fromtimestamp(time.time() if now is None else now, ZoneInfo(timezone))
    share = HOUR_PROFILE[local.hour] / sum(HOUR_PROFILE) * DAY_FACTOR[local.weekday()]
    return per_second * 3600 / share / pace


def planned_actions(sim: Simulation) -> list[dict[str, Any]]:
    """The session actions to send, in time order (those that apply to no conversation are left out)."""
    return [r for r in sim.ops_events if r["action"] in SESSION_ACTIONS and r["conversation_id"]]


def _epoch(value: str | None) -> float | None:
    return None if value is None else datetime.fromisoformat(value.replace("Z", "+00:00")).timestamp()


async def areplay(
    base_url: str,
    sim: Simulation,
    api_tokens: Sequence[str],
    *,
    concurrency: int = 16,
    progress: Callable[[int], None] | None = None,
    projection_timeout: float = 60.0,
    warmup_seconds: float = 15.0,
    before_action: Callable[[str], Any] | None = None,
    stop: asyncio.Event | None = None,
) -> LiveReport:
    """Play ``sim`` (generated with a ``window``) against ``base_url``; see the module docstring.

    ``before_action(conversation_id)`` runs after a conversation was read and before the action is
    posted (tests use it to make a concurrent change). Setting ``stop`` (Ctrl-C does) ends the run
    after the items in flight."""
    import httpx

    logging.getLogger("httpx").setLevel(logging.WARNING)
    base = base_url.rstrip("/")
    stop = stop or asyncio.Event()
    report = LiveReport()
    fatal: list[str] = []
    hook_tokens = {i.id: i.token for i in sim.instances}
    limits = httpx.Limits(max_connections=concurrency + 8, max_keepalive_connections=concurrency + 8)
    async with httpx.AsyncClient(timeout=30.0, limits=limits) as client:
        api_of = await _api_tokens(client, base, api_tokens, [i.id for i in sim.instances])
        loop = asyncio.get_running_loop()
        warm_until = loop.time() + warmup_seconds
        confirmed: set[str] = set()
        sem = asyncio.Semaphore(concurrency)

        def done(n: int = 1) -> None:
            if progress is not None:
                progress(n)

        def fail(message: str) -> None:
            if not fatal:
                fatal.append(message)
            stop.set()

        async def post(d: Delivery) -> None:
            headers = {"content-type": "application/json", "apikey": hook_tokens[d.instance]}
            body = d.payload.encode("utf-8")
            delay, code = 0.05, "error"
            try:
                for attempt in range(6):
                    try:
                        url = f"{base}/webhooks/evolution{d.path_suffix}"
                        resp = await client.post(url, content=body, headers=headers)
                        code = str(resp.status_code)
                        if resp.status_code == 401 and d.instance not in confirmed and loop.time() < warm_until:
                            await asyncio.sleep(0.2)  # the receiver's credential cache has not seen it yet
                            continue
                        if resp.status_code < 500:
                            if resp.status_code < 300:
                                confirmed.add(d.instance)
                            break
                    except httpx.TransportError:
                        code = "error"
                    if attempt < 5:
                        await asyncio.sleep(delay)
                        delay = min(delay * 2, 2.0)
            finally:
                sem.release()
                report.posted += 1
                report.statuses[code] += 1
                done()

        last_msgs = _message_times(sim)

        async def act(row: dict[str, Any], previous: asyncio.Task[None] | None) -> None:
            if previous is not None:
                await previous  # one conversation's actions in their order
            try:
                report.outcomes[row["action_id"]] = await _act(row)
            except LiveError as exc:
                fail(str(exc))
            finally:
                done()

        async def read(cid: str, headers: dict[str, str]) -> dict[str, Any] | None:
            try:
                resp = await client.get(f"{base}/v1/conversations/{cid}", params={"limit": 1}, headers=headers)
            except httpx.TransportError as exc:
                raise LiveError(f"the API at {base} is not reachable ({type(exc).__name__})") from None
            _check_auth(resp.status_code)
            return resp.json() if resp.status_code == 200 else None

        async def _act(row: dict[str, Any]) -> Outcome:
            cid, action = row["conversation_id"], row["action"]
            headers = {"Authorization": f"Bearer {api_of[row['instance']]}"}
            times = last_msgs.get(cid, [])
            at = row["occurred_at"].timestamp()
            needed = times[bisect.bisect_right(times, at) - 1] if times and times[0] <= at else None
            deadline = loop.time() + projection_timeout
            while True:  # wait for the projector to have applied the messages before the action
                conv = await read(cid, headers)
                if conv is not None and (needed is None or (_epoch(conv["last_message_at"]) or 0) >= needed - 1e-3):
                    break
                if loop.time() > deadline or stop.is_set():
                    return Outcome("missing")
                await asyncio.sleep(0.1)
            body = {"actor_id": row["actor_id"]}
            if action in ("assign", "transfer"):
                body |= {"attendant_id": row["attendant_id"], "team_id": row["team_id"]}
            for _ in range(ACTION_RETRIES):
                if before_action is not None:
                    before_action(cid)
                sent = time.time()
                try:
                    resp = await client.post(
                        f"{base}/v1/conversations/{cid}/{action}",
                        json=body,
                        headers=headers | {"If-Match": str(conv["version"])},
                    )
                except httpx.TransportError as exc:
                    raise LiveError(f"the API at {base} is not reachable ({type(exc).__name__})") from None
                _check_auth(resp.status_code)
                if resp.status_code == 200:
                    return Outcome("done", _stamp(action, conv, resp.json(), (sent + time.time()) / 2))
                if resp.status_code != 409:
                    return Outcome("refused" if resp.status_code == 422 else "missing")
                report.conflicts += 1
                fresh = await read(cid, headers)
                if fresh is None:
                    return Outcome("missing")
                if fresh["version"] == conv["version"]:
                    return Outcome("refused")  # the conversation itself refuses it (already resolved…)
                conv = fresh  # a concurrent change: act on what is there now
            return Outcome("refused")

        schedule: list[tuple[float, int, Any]] = [(d.received_at.timestamp(), 0, d) for d in sim.deliveries]
        schedule += [(r["occurred_at"].timestamp(), 1, r) for r in planned_actions(sim)]
        schedule.sort(key=lambda item: (item[0], item[1]))
        tasks: list[asyncio.Task[None]] = []
        chains: dict[str, asyncio.Task[None]] = {}
        for at, kind, item in schedule:
            wait = at - time.time()
            if wait > 0:
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(stop.wait(), timeout=wait)
            if stop.is_set():
                report.stopped = True
                break
            if kind == 0:
                await sem.acquire()
                tasks.append(asyncio.create_task(post(item)))
            else:
                task = asyncio.create_task(act(item, chains.get(item["conversation_id"])))
                chains[item["conversation_id"]] = task
                tasks.append(task)
        await asyncio.gather(*tasks)
    if fatal:
        raise LiveError(fatal[0])
    log.info("simulator.live_replayed", **{k: v for k, v in report.summary().items() if k != "statuses"})
    return report


def replay(base_url: str, sim: Simulation, api_tokens: Sequence[str], **kwargs: Any) -> LiveReport:
    """Blocking :func:`areplay`; Ctrl-C (SIGINT) stops it cleanly (``report.stopped``)."""

    async def main() -> LiveReport:
        stop = asyncio.Event()
        loop = asyncio.get_running_loop()
        with contextlib.suppress(NotImplementedError, RuntimeError, ValueError):  # not the main thread (tests)
            loop.add_signal_handler(signal.SIGINT, stop.set)
        try:
            return await areplay(base_url, sim, api_tokens, stop=stop, **kwargs)
        finally:
            with contextlib.suppress(NotImplementedError, RuntimeError, ValueError):
                loop.remove_signal_handler(signal.SIGINT)

    return asyncio.run(main())


def apply_outcomes(sim: Simulation, outcomes: dict[str, Outcome]) -> None:
    """Make the timeline say what was done — each sent action at the store's time, refused or missing
    ones removed — and rebuild ``sim.ground_truth`` and ``sim.ops_events`` from it."""
    for world in sim.worlds:
        kept = []
        for a in world.actions:
            outcome = outcomes.get(a.action_id)
            if outcome is None:
                kept.append(a)
            elif outcome.status == "done" and outcome.stamp is not None:
                a.t = outcome.stamp
                kept.append(a)
        world.actions = kept
    build_truth(sim)


async def _api_tokens(client: Any, base: str, tokens: Sequence[str], instances: list[str]) -> dict[str, str]:
    """Which API token acts on each simulated instance (``GET /v1/instances`` with each)."""
    import httpx

    if not tokens:
        raise LiveError("--live needs an API token (--api-token or BEAZAP_API_TOKEN): beazap token create")
    try:
        health = await client.get(f"{base}/healthz")
    except httpx.TransportError as exc:
        raise LiveError(f"the receiver at {base} is not reachable ({type(exc).__name__})") from None
    if health.status_code >= 500:
        raise LiveError(f"the receiver at {base} is not healthy (HTTP {health.status_code})")
    owner: dict[str, str] = {}
    for token in tokens:
        resp = await client.get(f"{base}/v1/instances", headers={"Authorization": f"Bearer {token}"})
        _check_auth(resp.status_code)
        if resp.status_code != 200:
            raise LiveError(f"listing instances failed (HTTP {resp.status_code})")
        for inst in resp.json():
            owner.setdefault(inst["id"], token)
    missing = [i for i in instances if i not in owner]
    if missing:
        raise LiveError(
            f"no API token given can act on instance(s) {', '.join(missing)}: pass one --api-token per account"
        )
    return owner


def _check_auth(code: int) -> None:
    if code == 401:
        raise LiveError("the API refused the token (401): check --api-token / BEAZAP_API_TOKEN")
    if code == 403:
        raise LiveError("the API token may not act on conversations (403): use an admin or agent token")


def _message_times(sim: Simulation) -> dict[str, list[float]]:
    out: dict[str, list[float]] = {}
    for m in sim.ground_truth.messages:
        if m.conversation_id:
            out.setdefault(m.conversation_id, []).append(m.event_at.timestamp())
    for times in out.values():
        times.sort()
    return out


def _stamp(action: str, before: dict[str, Any], after: dict[str, Any], fallback: float) -> float:
    """When the store recorded the action: its own timestamp where the answer shows it."""
    if action == "resolve" and after.get("resolved_at"):
        return _epoch(after["resolved_at"]) or fallback
    if action in ("assign", "transfer") and before.get("first_assigned_at") is None and after.get("first_assigned_at"):
        return _epoch(after["first_assigned_at"]) or fallback
    return fallback
