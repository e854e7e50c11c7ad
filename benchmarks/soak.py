"""Soak with faults: the whole product under steady traffic while its parts are killed and cut off.

Runs on loopback only, bounded in time and requests:

- ``beazap serve --workers 2`` (two receiver workers), ``beazap worker`` (projector into the live
  store), a silver → gold loop (in this process) and the metrics API, all on one lake and one
  PostgreSQL database reached through a loopback TCP proxy that can be cut;
- simulated Evolution traffic (the simulator's deliveries, duplicates included) at ``--rate``
  webhooks/s for ``--minutes``;
- a fault every ``--fault-every`` seconds, in rotation: ``kill -9`` one receiver worker, drop
  PostgreSQL for 20 s, ``kill -9`` the worker, restart it.

At the end it checks acknowledged = bronze (0 lost, 0 doubled), silver built incrementally
through the faults = silver rebuilt in full from the same bronze, live-store messages = silver
messages, reconciles the live store's conversations with silver, and prints the worker's maximum
lag and the receiver's p99 during faults. ``--lake s3`` runs the same on an S3-compatible lake (moto server
on loopback, conditional put).

    uv run python -m benchmarks.soak --minutes 20 --rate 300
    uv run python -m benchmarks.soak --minutes 6 --rate 200 --lake s3
"""

from __future__ import annotations

import argparse
import asyncio
import json
import math
import os
import signal
import subprocess
import sys
import threading
import time
import uuid
from collections.abc import Iterator
from contextlib import contextmanager, nullcontext, suppress
from dataclasses import dataclass, field
from datetime import date
from pathlib import Path
from typing import Any

import httpx
import numpy as np
import sqlalchemy as sa

from benchmarks.servers import free_port
from benchmarks.workdir import scratch_dir
from tests.fakes.tcp_proxy import TcpProxy

ROOT = Path(__file__).resolve().parents[1]
PG_ADMIN = "postgresql+psycopg://postgres@127.0.0.1:5432/test"
FAULTS = ("kill -9 a receiver worker", "PostgreSQL cut", "kill -9 the worker", "restart the worker")


@contextmanager
def postgres_database() -> Iterator[str]:
    """A throw-away PostgreSQL database (dropped at the end)."""
    name = f"beazap_soak_{uuid.uuid4().hex[:8]}"
    admin = sa.create_engine(PG_ADMIN, isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:
        conn.execute(sa.text(f'CREATE DATABASE "{name}"'))
    try:
        yield name
    finally:
        with admin.connect() as conn:
            conn.execute(sa.text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
        admin.dispose()


@contextmanager
def s3_lake(env: dict[str, str]) -> Iterator[None]:
    """Point ``env`` at a bucket of a moto server on loopback."""
    import boto3
    from moto.server import ThreadedMotoServer

    port = free_port()
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=port)
    server.start()
    endpoint = f"http://127.0.0.1:{port}"
    boto3.client(
        "s3", endpoint_url=endpoint, aws_access_key_id="test", aws_secret_access_key="test", region_name="us-east-1"
    ).create_bucket(Bucket="soak")
    env.update(
        BEAZAP_LAKE_URI="s3://soak/lake",
        BEAZAP_S3_ENDPOINT_URL=endpoint,
        BEAZAP_S3_ALLOW_HTTP="true",
        BEAZAP_S3_ACCESS_KEY_ID="test",
        BEAZAP_S3_SECRET_ACCESS_KEY="test",
    )
    try:
        yield
    finally:
        server.stop()


def children(pid: int) -> list[int]:
    found: list[int] = []
    for task in Path(f"/proc/{pid}/task").glob("*"):
        with suppress(OSError):
            found += [int(p) for p in (task / "children").read_text().split()]
    return found


def worker_processes(pid: int) -> list[int]:
    """The server's worker processes (multiprocessing children), not its resource tracker."""
    workers = []
    for child in children(pid):
        with suppress(OSError):
            if b"spawn_main" in Path(f"/proc/{child}/cmdline").read_bytes():
                workers.append(child)
    return workers


class Process:
    """One ``beazap`` subprocess in its own session (so ``kill -9`` takes its children too)."""

    def __init__(self, args: list[str], env: dict[str, str], log: Path) -> None:
        self.args, self.env, self.log = args, env, log
        self.proc: subprocess.Popen[bytes] | None = None

    def start(self) -> None:
        out = self.log.open("ab")
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "beazap", *self.args],
            cwd=ROOT,
            env=self.env,
            stdout=out,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )

    def kill(self) -> None:
        if self.proc and self.proc.poll() is None:
            os.killpg(self.proc.pid, signal.SIGKILL)
            self.proc.wait()

    def stop(self) -> None:
        if self.proc and self.proc.poll() is None:
            os.killpg(self.proc.pid, signal.SIGTERM)
            try:
                self.proc.wait(timeout=30)
            except subprocess.TimeoutExpired:
                self.kill()


def wait_until(predicate: Any, timeout: float, what: str) -> None:
    deadline = time.monotonic() + timeout
    while not predicate():
        if time.monotonic() > deadline:
            raise SystemExit(f"soak: {what} not reached within {timeout:.0f} s")
        time.sleep(0.2)  # polling a condition against a deadline


def ready(base: str) -> bool:
    with suppress(httpx.HTTPError):
        return httpx.get(f"{base}/readyz", timeout=2).status_code == 200
    return False


@dataclass
class Traffic:
    """Posts deliveries at a fixed rate; records every answer (time, latency, status, receipt)."""

    base: str
    deliveries: list[Any]
    tokens: dict[str, str]
    rate: float
    seconds: float
    answers: list[tuple[float, float, int, int, str | None]] = field(default_factory=list)
    stop: threading.Event = field(default_factory=threading.Event)

    def run(self) -> None:
        asyncio.run(self._run())

    async def _run(self) -> None:
        limits = httpx.Limits(max_connections=64, max_keepalive_connections=64)
        async with httpx.AsyncClient(base_url=self.base, timeout=30, limits=limits) as client:
            sem = asyncio.Semaphore(64)
            started = time.monotonic()
            tasks: list[asyncio.Task[None]] = []
            for i, delivery in enumerate(self.deliveries):
                due = started + i / self.rate
                if due - started > self.seconds or self.stop.is_set():
                    break
                delay = due - time.monotonic()
                if delay > 0:
                    await asyncio.sleep(delay)  # pacing the offered load, not synchronization
                await sem.acquire()
                tasks.append(asyncio.create_task(self._post(client, sem, i, delivery)))
            await asyncio.gather(*tasks)

    async def _post(self, client: httpx.AsyncClient, sem: asyncio.Semaphore, i: int, d: Any) -> None:
        headers = {"content-type": "application/json", "apikey": self.tokens[d.instance]}
        try:
            for _attempt in range(20):  # Evolution retries 5xx and network errors; so do we
                t0 = time.monotonic()
                try:
                    resp = await client.post("/webhooks/evolution" + d.path_suffix, content=d.payload, headers=headers)
                except httpx.TransportError:
                    self.answers.append((t0, time.monotonic() - t0, 0, i, None))
                    await asyncio.sleep(0.5)
                    continue
                receipt = resp.json().get("receipt_id") if resp.status_code == 200 else None
                self.answers.append((t0, time.monotonic() - t0, resp.status_code, i, receipt))
                if resp.status_code < 500:
                    return
                await asyncio.sleep(0.5)
        finally:
            sem.release()


class LagProbe:
    """Samples bronze's version and the projector's cursor every second (directly, past the proxy)."""

    def __init__(self, lake: Any, engine: sa.Engine) -> None:
        self.lake, self.engine = lake, engine
        self.first_seen: dict[int, float] = {}
        self.max_lag = 0.0
        self.stop = threading.Event()

    def run(self) -> None:
        from bronze.schema import WEBHOOK_EVENTS
        from live.projector import WEBHOOK_CURSOR
        from storage import log_tail
        from storage.tables import projector_cursors

        while not self.stop.wait(1.0):
            with suppress(Exception):
                version = log_tail.latest_version(self.lake, WEBHOOK_EVENTS, max(self.first_seen, default=-1))
                now = time.monotonic()
                self.first_seen.setdefault(version, now)
                with self.engine.connect() as conn:
                    cursor = conn.execute(
                        sa.select(projector_cursors.c.version).where(projector_cursors.c.name == WEBHOOK_CURSOR)
                    ).scalar()
                cursor = -1 if cursor is None else int(cursor)
                pending = [t for v, t in self.first_seen.items() if v > cursor]
                self.max_lag = max(self.max_lag, now - min(pending) if pending else 0.0)


def pipeline_loop(lake: Any, engine: sa.Engine, settings: Any, stop: threading.Event, errors: list[str]) -> None:
    """Silver then gold, again and again, as the scheduled assets would (errors are counted, not fatal)."""
    from gold.runner import build_gold
    from silver.pipeline import build_silver

    while not stop.is_set():
        try:
            build_silver(lake, settings=settings)
            build_gold(lake, engine=engine, settings=settings)
        except Exception as exc:  # a fault is expected to interrupt a build now and then
            errors.append(type(exc).__name__ + (" (found gap)" if "found gap" in str(exc) else ""))
            print(f"silver/gold loop failed: {errors[-1]}", flush=True)
            stop.wait(2.0)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--minutes", type=float, default=20.0)
    parser.add_argument("--rate", type=float, default=300.0, help="webhooks per second offered")
    parser.add_argument("--fault-every", type=float, default=120.0, help="seconds between faults")
    parser.add_argument("--outage-seconds", type=float, default=20.0)
    parser.add_argument("--lake", choices=("local", "s3"), default="local")
    parser.add_argument("--keep", action="store_true", help="keep the scratch folder")
    args = parser.parse_args()

    from beazap.simulator import SimulationConfig, simulate

    print(f"load average at start: {[round(x, 2) for x in os.getloadavg()]}", flush=True)
    seconds = args.minutes * 60
    wanted = int(args.rate * seconds) + 1
    instances = 8
    days = max(1, math.ceil(wanted / (instances * 500)))
    print(f"simulating {instances} instances × {days} days for ≥ {wanted:,} deliveries …", flush=True)
    sim = simulate(SimulationConfig(seed=7, instances=instances, days=days, start=date(2026, 1, 5)))
    deliveries = sim.deliveries[:wanted]
    print(f"{len(deliveries):,} deliveries ready", flush=True)

    work = scratch_dir("soak-")
    proxy = TcpProxy("127.0.0.1", 5432)
    try:  # the report ends the process with its verdict (SystemExit): clean up on the way out
        with postgres_database() as dbname:
            direct_url = f"postgresql+psycopg://postgres@127.0.0.1:5432/{dbname}"
            proxied_url = f"postgresql+psycopg://postgres@127.0.0.1:{proxy.port}/{dbname}"
            env = {k: v for k, v in os.environ.items() if not k.startswith("BEAZAP_")}
            env.update(
                BEAZAP_LAKE_URI=str(work / "lake"),
                BEAZAP_DATABASE_URL=proxied_url,
                BEAZAP_SECRET_KEY_FILE=str(work / "secret.key"),
                BEAZAP_LOG_LEVEL="WARNING",
            )
            with s3_lake(env) if args.lake == "s3" else nullcontext():
                run(args, sim, deliveries, env, direct_url, proxy, work, seconds)
    finally:
        proxy.close()
        if not args.keep:
            import shutil

            shutil.rmtree(work, ignore_errors=True)


def run(
    args: Any,
    sim: Any,
    deliveries: list[Any],
    env: dict[str, str],
    direct_url: str,
    proxy: TcpProxy,
    work: Path,
    seconds: float,
) -> None:
    from beazap.simulator import register_instances
    from bronze.schema import WEBHOOK_EVENTS
    from core.settings import Settings
    from live.reconcile import reconcile
    from storage import log_tail, migrate
    from storage.db import make_engine
    from storage.lake import Lake
    from storage.tables import messages as live_messages

    os.environ.update(env)
    os.environ["BEAZAP_DATABASE_URL"] = direct_url  # this process reads past the proxy
    settings = Settings()
    direct = make_engine(direct_url)
    migrate.upgrade(direct)
    register_instances(direct, sim)
    tokens = {i.id: i.token for i in sim.instances}
    lake = Lake.from_settings(settings)

    port = free_port()
    base = f"http://127.0.0.1:{port}"
    receiver = Process(["serve", "--port", str(port), "--workers", "2"], env, work / "receiver.log")
    worker = Process(["worker"], env, work / "worker.log")
    receiver.start()
    wait_until(lambda: ready(base), 90, "receiver ready")
    worker.start()

    traffic = Traffic(base, deliveries, tokens, args.rate, seconds)
    probe = LagProbe(lake, direct)
    stop_pipeline = threading.Event()
    pipeline_errors: list[str] = []
    threads = [
        threading.Thread(target=traffic.run, name="traffic"),
        threading.Thread(target=probe.run, name="lag"),
        threading.Thread(
            target=pipeline_loop,
            args=(lake, make_engine(env["BEAZAP_DATABASE_URL"]), settings, stop_pipeline, pipeline_errors),
            name="pipeline",
        ),
    ]
    for thread in threads:
        thread.start()
    started = time.monotonic()
    fault_windows: list[tuple[str, float, float]] = []
    n = 0
    while time.monotonic() - started < seconds - args.fault_every / 2:
        if traffic.stop.wait(args.fault_every):
            break
        fault = FAULTS[n % len(FAULTS)]
        n += 1
        t0 = time.monotonic()
        print(f"[{t0 - started:6.0f} s] fault: {fault}", flush=True)
        if fault.startswith("kill -9 a receiver"):
            pids = worker_processes(receiver.proc.pid) if receiver.proc else []
            if pids:
                os.kill(pids[0], signal.SIGKILL)
            print(f"         killed receiver worker {pids[0] if pids else 'none found'} of {len(pids)}", flush=True)
        elif fault.startswith("PostgreSQL"):
            proxy.cut()
            time.sleep(args.outage_seconds)  # the fault's duration, not synchronization
            proxy.restore()
        elif fault == "kill -9 the worker":
            worker.kill()
        else:
            worker.start()
        fault_windows.append((fault, t0, time.monotonic() + 30))
    threads[0].join()
    if worker.proc is None or worker.proc.poll() is not None:
        worker.start()

    # Drain: the worker catches up with bronze, then one last silver + gold build.
    print("traffic done; waiting for the worker to catch up …", flush=True)
    latest = log_tail.latest_version(lake, WEBHOOK_EVENTS)
    probe_cursor = probe_cursor_fn(direct)
    wait_until(lambda: probe_cursor() >= latest, 600, "worker caught up with bronze")
    probe.stop.set()
    stop_pipeline.set()
    for thread in threads[1:]:
        thread.join()
    from gold.runner import build_gold
    from silver.pipeline import build_silver

    build_silver(lake, settings=settings)
    build_gold(lake, engine=direct, settings=settings)
    receiver.stop()
    worker.stop()

    report(
        traffic, deliveries, lake, direct, fault_windows, probe, pipeline_errors, reconcile, live_messages, args, work
    )


def probe_cursor_fn(engine: sa.Engine) -> Any:
    from live.projector import WEBHOOK_CURSOR
    from storage.tables import projector_cursors

    def cursor() -> int:
        with engine.connect() as conn:
            v = conn.execute(
                sa.select(projector_cursors.c.version).where(projector_cursors.c.name == WEBHOOK_CURSOR)
            ).scalar()
        return -1 if v is None else int(v)

    return cursor


def message_keys(lake: Any, direct_only: bool = False) -> set[tuple[str, str]]:
    """(instance, message id) of silver's messages; the live store keeps direct chats only."""
    from silver.schema import MESSAGES as SILVER_MESSAGES

    table = lake.open(SILVER_MESSAGES).to_pyarrow_table(columns=["instance_id", "message_id", "chat_type"])
    rows = zip(*(table.column(i).to_pylist() for i in range(3)), strict=True)
    return {(i, m) for i, m, kind in rows if not direct_only or kind == "direct"}


def report(
    traffic: Traffic,
    deliveries: list[Any],
    lake: Any,
    engine: sa.Engine,
    windows: list[tuple[str, float, float]],
    probe: LagProbe,
    pipeline_errors: list[str],
    reconcile: Any,
    live_messages: Any,
    args: Any,
    work: Path,
) -> None:
    from bronze.schema import WEBHOOK_EVENTS

    acked = [(i, r) for _t, _l, status, i, r in traffic.answers if status == 200 and r]
    receipts = lake.open(WEBHOOK_EVENTS).to_pyarrow_table(columns=["receipt_id"]).column(0).to_pylist()
    landed = set(receipts)
    lost = [r for _i, r in acked if r not in landed]
    doubled = len(receipts) - len(landed)
    incremental = message_keys(lake)
    from silver.pipeline import build_silver

    build_silver(lake, full=True)  # the same bronze rebuilt from scratch: faults must not have changed silver
    full = message_keys(lake)
    direct = message_keys(lake, direct_only=True)
    with engine.connect() as conn:
        live_ids = {
            (r.instance_id, r.message_id)
            for r in conn.execute(sa.select(live_messages.c.instance_id, live_messages.c.message_id))
        }
    # each side closes quiet conversations at its own as-of (the worker's last sweep, silver's last run);
    # compared at one as-of, only a difference of rules remains
    own = reconcile(engine, lake, same_as_of=False)
    same = reconcile(engine, lake)
    rec = same.summary()
    gap_in_logs = sum(log.read_text(errors="replace").count("found gap") for log in work.glob("*.log"))

    lat = np.array([secs for _t, secs, s, _i, _r in traffic.answers if s == 200])
    in_fault = np.array(
        [secs for t, secs, s, _i, _r in traffic.answers if s == 200 and any(a <= t <= b for _f, a, b in windows)]
    )
    statuses: dict[int, int] = {}
    for _t, _l, s, _i, _r in traffic.answers:
        statuses[s] = statuses.get(s, 0) + 1
    result = {
        "lake": args.lake,
        "minutes": args.minutes,
        "rate_offered": args.rate,
        "deliveries_posted": len({i for _t, _l, _s, i, _r in traffic.answers}),
        "answers_by_status": statuses,
        "acknowledged": len(acked),
        "bronze_rows": len(receipts),
        "lost": len(lost),
        "doubled_in_bronze": doubled,
        "silver_messages": len(full),
        "silver_only_in_incremental": len(incremental - full),
        "silver_only_in_full_rebuild": len(full - incremental),
        "live_messages": len(live_ids),
        "live_only": len(live_ids - direct),
        "silver_direct_not_live": len(direct - live_ids),
        "examples": {
            "only_full": sorted(full - incremental)[:3],
            "only_silver": sorted(direct - live_ids)[:3],
        },
        "reconcile": rec,
        "reconcile_each_at_own_as_of": own.summary(),
        "status_differences_at_own_as_of": [(live, silver) for _c, f, live, silver in own.mismatches if f == "status"][
            :5
        ],
        "gap_refusals_in_receiver_and_worker_logs": gap_in_logs,
        "faults": [w[0] for w in windows],
        "worker_max_lag_s": round(probe.max_lag, 1),
        "receiver_p99_ms": round(float(np.percentile(lat, 99)) * 1000, 1) if lat.size else None,
        "receiver_p99_during_faults_ms": round(float(np.percentile(in_fault, 99)) * 1000, 1) if in_fault.size else None,
        "pipeline_errors": {e: pipeline_errors.count(e) for e in set(pipeline_errors)},
        "load_average_at_end": [round(x, 2) for x in os.getloadavg()],
    }
    print(json.dumps(result, indent=2, default=str))
    ok = not lost and not doubled and not (incremental ^ full) and not (live_ids ^ direct) and same.ok
    sys.exit(0 if ok else 1)


if __name__ == "__main__":
    main()
