"""Live queue stream (``python -m benchmarks.live_stream``): webhook → SSE event latency, idle
connection memory and the queue's first page.

One BeaZap server (uvicorn) and one ``beazap worker`` (the projector) run as subprocesses on a
SQLite store and a local lake, so the server's memory is its own. This process posts webhooks to the
receiver at ``--rate`` per second for ``--seconds`` (each a new customer, so each makes a queue
change), and holds ``--clients`` SSE streams; latency is from the start of the webhook POST to the
event's arrival on each stream. Then ``--idle`` idle streams measure the server's extra RSS, and the
queue's first page (``/v1/conversations?status=open`` and ``/v1/sla/queue``) is timed with
``--open`` open conversations, against ``/healthz`` in the same run. Loopback only; bounded.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import shutil
import statistics
import subprocess
import sys
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

import httpx

from benchmarks.servers import free_port, wait_healthy
from benchmarks.workdir import scratch_dir

ROOT = Path(__file__).resolve().parents[1]
KEY = '"contact_key":"'


def _rss_mb(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return 0.0


def _pct(values: list[float], q: float) -> float:
    if not values:
        return float("nan")
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))]


async def _stream(base: str, token: str, arrivals: dict[str, float] | None, ready: asyncio.Event, stop: asyncio.Event):
    headers = {"Authorization": f"Bearer {token}"}
    async with (
        httpx.AsyncClient(timeout=httpx.Timeout(30, read=None)) as client,
        client.stream("GET", f"{base}/v1/live/stream", headers=headers) as resp,
    ):
        ready.set()
        async for line in resp.aiter_lines():
            if stop.is_set():
                return
            if arrivals is not None and line.startswith("data:"):  # cheap: 200 streams share this process
                start = line.index(KEY) + len(KEY)
                arrivals.setdefault(line[start : line.index('"', start)], time.monotonic())


async def _latency(base: str, token: str, hook: str, args: argparse.Namespace) -> dict[str, float]:
    stop = asyncio.Event()
    arrivals = [dict[str, float]() for _ in range(args.clients)]
    readies = [asyncio.Event() for _ in range(args.clients)]
    tasks = [asyncio.create_task(_stream(base, token, arrivals[i], readies[i], stop)) for i in range(args.clients)]
    await asyncio.wait_for(asyncio.gather(*(r.wait() for r in readies)), 60)
    sent: dict[str, float] = {}
    failed: list[int] = []
    total = int(args.rate * args.seconds)
    ts = int((datetime.now(UTC) - timedelta(minutes=1)).timestamp())
    limits = httpx.Limits(max_connections=200, max_keepalive_connections=200)
    async with httpx.AsyncClient(base_url=base, timeout=30, limits=limits) as poster:

        async def post(n: int) -> None:
            phone = f"55119{n:08d}"
            body = {
                "event": "messages.upsert",
                "instance": "bench-1",
                "data": {
                    "key": {"remoteJid": f"{phone}@s.whatsapp.net", "fromMe": False, "id": f"bench-{n}"},
                    "message": {"conversation": "oi"},
                    "messageType": "conversation",
                    "messageTimestamp": ts,
                },
            }
            t = time.monotonic()
            if args.leg == "store":  # the console's own leg: a store write → the event on every stream
                await asyncio.to_thread(_store_write, args.engine, phone, n)
                sent["+" + phone] = t
                return
            try:
                resp = await poster.post("/webhooks/evolution", json=body, headers={"apikey": hook})
            except httpx.HTTPError:
                failed.append(n)
                return
            if resp.status_code == 200:
                sent["+" + phone] = t
            else:
                failed.append(n)

        started = time.monotonic()
        posts = []
        for n in range(total):
            delay = started + n / args.rate - time.monotonic()
            if delay > 0:
                await asyncio.sleep(delay)  # pacing the load generator, not synchronizing
            posts.append(asyncio.create_task(post(n)))
        await asyncio.gather(*posts)
        post_seconds = time.monotonic() - started
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline and any(len(a) < len(sent) for a in arrivals):
        await asyncio.sleep(0.1)  # bounded wait for the stragglers
    stop.set()
    for task in tasks:
        task.cancel()
    await asyncio.gather(*tasks, return_exceptions=True)
    lat = [a[k] - sent[k] for a in arrivals for k in a if k in sent]
    missing = len(sent) * args.clients - len(lat)
    return {
        "p50": _pct(lat, 0.5),
        "p95": _pct(lat, 0.95),
        "max": max(lat, default=float("nan")),
        "missing": missing,
        "failed_posts": len(failed),
        "post_seconds": post_seconds,
    }


def _store_write(engine, phone: str, n: int) -> None:  # type: ignore[no-untyped-def]
    import sqlalchemy as sa

    from storage.tables import conversations

    now = datetime.now(UTC)
    with engine.begin() as conn:
        conn.execute(
            sa.insert(conversations).values(
                id=f"direct-{n}", instance_id="bench-1", contact_key="+" + phone, origin="inbound",
                opening_message_id=f"d-{n}", opened_at=now, last_message_at=now, status="open",
            )
        )  # fmt: skip


async def _idle(base: str, token: str, pid: int, n: int) -> tuple[float, float]:
    stop = asyncio.Event()
    before = _rss_mb(pid)
    readies = [asyncio.Event() for _ in range(n)]
    tasks = [asyncio.create_task(_stream(base, token, None, readies[i], stop)) for i in range(n)]
    await asyncio.wait_for(asyncio.gather(*(r.wait() for r in readies)), 120)
    after = _rss_mb(pid)
    stop.set()
    for task in tasks:
        task.cancel()
    await asyncio.gather(*tasks, return_exceptions=True)
    return before, after


def _timed(client: httpx.Client, path: str, runs: int) -> list[float]:
    out = []
    for _ in range(runs):
        t = time.perf_counter()
        client.get(path).raise_for_status()
        out.append((time.perf_counter() - t) * 1000)
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rate", type=float, default=100.0, help="Webhooks per second.")
    parser.add_argument("--seconds", type=float, default=10.0)
    parser.add_argument("--clients", type=int, default=50, help="SSE streams during the latency run.")
    parser.add_argument("--idle", type=int, default=1000, help="Idle SSE streams for the memory measure.")
    parser.add_argument(
        "--leg",
        choices=["webhook", "store"],
        default="webhook",
        help="webhook: the whole path (receiver → bronze → worker → store → stream); store: direct store writes.",
    )
    parser.add_argument("--open", type=int, default=5000, help="Open conversations for the first-page timing.")
    args = parser.parse_args()

    home = scratch_dir("live-stream-")
    env = {
        "BEAZAP_LAKE_URI": str(home / "lake"),
        "BEAZAP_DATABASE_URL": f"sqlite:///{home / 'ops.db'}",
        "BEAZAP_SECRET_KEY_FILE": str(home / "secret.key"),
        "BEAZAP_LOG_LEVEL": "WARNING",
        "BEAZAP_INSTANCE_CACHE_REFRESH_SECONDS": "0.5",
    }
    os.environ.update(env)
    from core.settings import get_settings

    get_settings.cache_clear()
    import sqlalchemy as sa

    from storage import migrate
    from storage.db import get_engine
    from storage.tables import conversations
    from storage.tokens import create_token

    settings = get_settings()
    engine = get_engine(settings)
    migrate.upgrade(engine)
    token = create_token(engine, "bench", "admin")
    port = free_port()
    base = f"http://127.0.0.1:{port}"
    server = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "uvicorn",
            "api.app:create_app",
            "--factory",
            "--port",
            str(port),
            "--log-level",
            "warning",
        ],
        cwd=ROOT,
        env={**os.environ, **env},
    )
    worker: subprocess.Popen[bytes] | None = None
    try:
        with httpx.Client(base_url=base, timeout=30, headers={"Authorization": f"Bearer {token}"}) as api:
            wait_healthy(api)
            hook = api.post("/v1/instances", json={"id": "bench-1"}).json()["webhook_token"]

            worker = subprocess.Popen([sys.executable, "-m", "beazap", "worker"], cwd=ROOT, env={**os.environ, **env})
            time.sleep(1.0)  # the receiver's instance cache refreshes (0.5 s)
            args.engine = engine
            lat = asyncio.run(_latency(base, token, hook, args))
            worker.terminate()
            worker.wait(timeout=30)

            before, after = asyncio.run(_idle(base, token, server.pid, args.idle))

            now = datetime.now(UTC)
            with engine.begin() as conn:
                conn.execute(
                    sa.insert(conversations),
                    [
                        {
                            "id": f"open-{i}",
                            "instance_id": "bench-1",
                            "contact_key": f"+5521{i:09d}",
                            "origin": "inbound",
                            "opening_message_id": f"o-{i}",
                            "opened_at": now - timedelta(seconds=i * 7),
                            "last_message_at": now - timedelta(seconds=i * 7),
                            "status": "open",
                        }
                        for i in range(args.open)
                    ],
                )
            open_now = api.get("/v1/conversations", params={"status": "open", "limit": 1}).status_code
            assert open_now == 200
            health = _timed(api, "/healthz", 30)
            page = _timed(api, "/v1/conversations?status=open&limit=50", 30)
            queue = _timed(api, "/v1/sla/queue?limit=50", 30)
    finally:
        if worker is not None and worker.poll() is None:
            worker.terminate()
            worker.wait(timeout=30)
        server.terminate()
        server.wait(timeout=30)
        shutil.rmtree(home, ignore_errors=True)

    print(f"load average: {os.getloadavg()[0]:.1f}")
    print(
        f"{args.leg} → event on {args.clients} streams at {args.rate:g}/s for {args.seconds:g} s: "
        f"p50 {lat['p50'] * 1000:.0f} ms, p95 {lat['p95'] * 1000:.0f} ms, max {lat['max'] * 1000:.0f} ms, "
        f"missing {lat['missing']}; {lat['failed_posts']} posts failed; posting took {lat['post_seconds']:.1f} s"
    )
    print(f"{args.idle} idle streams: server RSS {before:.0f} → {after:.0f} MB (+{after - before:.0f} MB)")
    h50, p50, q50 = statistics.median(health), statistics.median(page), statistics.median(queue)
    print(f"/healthz baseline: p50 {h50:.1f} ms, p95 {_pct(health, 0.95):.1f} ms")
    print(
        f"first page, {args.open} + open conversations: /v1/conversations p50 {p50:.1f} ms "
        f"(p95 {_pct(page, 0.95):.1f}, ×{p50 / h50:.1f} baseline); /v1/sla/queue p50 {q50:.1f} ms "
        f"(p95 {_pct(queue, 0.95):.1f}, ×{q50 / h50:.1f} baseline)"
    )


if __name__ == "__main__":
    main()
