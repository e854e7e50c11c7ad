"""The receiver as a real server (``beazap serve`` subprocesses): kill -9 durability, two workers.

Clients post continuously from several threads; what matters is that every request answered 200
(acknowledged) is in ``bronze/webhook_events`` afterwards, whatever happens to the server.
"""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import httpx
import pyarrow as pa
import pytest

from bronze.schema import WEBHOOK_EVENTS
from storage import migrate
from storage.db import make_engine
from storage.instances import add_instance
from storage.lake import Lake

ROOT = Path(__file__).resolve().parents[1]
TOKEN = "whk_process_test_token"
INSTANCE = "loja-proc"


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@pytest.fixture
def server_env(tmp_path: Path) -> dict[str, str]:
    db_url = f"sqlite:///{tmp_path / 'ops.db'}"
    engine = make_engine(db_url)
    migrate.upgrade(engine)
    add_instance(engine, INSTANCE, "acme", token=TOKEN)
    engine.dispose()
    env = {k: v for k, v in os.environ.items() if not k.startswith(("BEAZAP_", "PROMETHEUS_"))}
    env.update(
        BEAZAP_LAKE_URI=str(tmp_path / "lake"),
        BEAZAP_DATABASE_URL=db_url,
        BEAZAP_SECRET_KEY_FILE=str(tmp_path / "secret.key"),
        BEAZAP_LOG_LEVEL="WARNING",
        BEAZAP_GROUP_COMMIT_MAX_WAIT_MS="10",
        BEAZAP_BRONZE_COMPACT_EVERY_COMMITS="10",  # compactions (and checkpoints) happen under load too
        BEAZAP_BRONZE_COMPACT_MIN_INTERVAL_SECONDS="0",
    )
    return env


@contextmanager
def serve(env: dict[str, str], workers: int = 1) -> Iterator[tuple[subprocess.Popen[bytes], str]]:
    port = free_port()
    proc = subprocess.Popen(
        [sys.executable, "-m", "beazap", "serve", "--port", str(port), "--workers", str(workers)],
        cwd=ROOT,
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        start_new_session=True,
    )
    base = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 60
        while True:
            try:
                if httpx.get(f"{base}/readyz", timeout=2).status_code == 200:
                    break
            except httpx.HTTPError:
                pass
            if proc.poll() is not None:
                raise AssertionError(f"server exited: {proc.stderr.read().decode()[-2000:] if proc.stderr else ''}")
            if time.monotonic() > deadline:
                raise AssertionError("server not ready within 60 s")
            time.sleep(0.1)  # polling readiness against a deadline
        yield proc, base
    finally:
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGTERM)
            try:
                proc.wait(timeout=30)
            except subprocess.TimeoutExpired:
                os.killpg(proc.pid, signal.SIGKILL)
                proc.wait()


class Load:
    """Threads posting webhooks until stopped; records acknowledged receipt ids."""

    def __init__(self, base: str, threads: int = 12, keepalive: bool = True) -> None:
        self.base = base
        self.acked: list[str] = []
        self.failures = 0
        self.stop = threading.Event()
        self._lock = threading.Lock()
        self._threads = [threading.Thread(target=self._run, args=(t, keepalive)) for t in range(threads)]

    def __enter__(self) -> Load:
        for thread in self._threads:
            thread.start()
        return self

    def __exit__(self, *_exc: object) -> None:
        self.stop.set()
        for thread in self._threads:
            thread.join(timeout=60)

    def wait_for(self, acked: int, timeout: float = 60) -> None:
        deadline = time.monotonic() + timeout
        while len(self.acked) < acked:
            if time.monotonic() > deadline:
                raise AssertionError(f"only {len(self.acked)} acks within {timeout} s ({self.failures} failures)")
            time.sleep(0.02)

    def _run(self, thread_no: int, keepalive: bool) -> None:
        limits = httpx.Limits(max_keepalive_connections=1 if keepalive else 0)
        with httpx.Client(base_url=self.base, timeout=30, limits=limits) as client:
            n = 0
            while not self.stop.is_set():
                n += 1
                body = json.dumps(
                    {
                        "event": "messages.upsert",
                        "instance": INSTANCE,
                        "data": {"key": {"id": f"T{thread_no}-{n}"}, "message": {"conversation": "oi"}},
                    }
                )
                try:
                    response = client.post("/webhooks/evolution", content=body, headers={"apikey": TOKEN})
                except httpx.HTTPError:
                    with self._lock:
                        self.failures += 1
                    if self.stop.wait(0.01):
                        return
                    continue
                if response.status_code == 200:
                    with self._lock:
                        self.acked.append(response.json()["receipt_id"])


def bronze_receipts(lake_dir: Path) -> list[str]:
    table = Lake(str(lake_dir)).open(WEBHOOK_EVENTS).to_pyarrow_table(columns=["receipt_id"])
    return pa.table(table).column(0).to_pylist()


def app_ids(lake_dir: Path) -> set[str]:
    found: set[str] = set()
    for path in (lake_dir / WEBHOOK_EVENTS / "_delta_log").glob("*.json"):
        for line in path.read_text().splitlines():
            action = json.loads(line)
            if "txn" in action:
                found.add(action["txn"]["appId"])
    return found


def receiver_writers(lake_dir: Path) -> set[str]:
    """Writer processes seen in the log: app id = beazap-receiver-<host>-<pid>-<random>-<lane>."""
    return {a.rsplit("-", 1)[0] for a in app_ids(lake_dir) if a.startswith("beazap-receiver-")}


def test_kill_9_loses_no_acknowledged_webhook(server_env: dict[str, str]) -> None:
    lake_dir = Path(server_env["BEAZAP_LAKE_URI"])
    with serve(server_env) as (proc, base), Load(base) as load:
        load.wait_for(400)
        os.killpg(proc.pid, signal.SIGKILL)  # mid-load: requests are in flight
        proc.wait(timeout=30)
        acked_at_kill = len(load.acked)
    assert proc.returncode == -signal.SIGKILL
    landed = set(bronze_receipts(lake_dir))
    missing = [r for r in load.acked if r not in landed]
    assert missing == [], f"{len(missing)} acknowledged webhooks lost of {acked_at_kill}"
    assert len(landed) >= acked_at_kill


def test_restart_after_kill_9_appends_to_the_same_table(server_env: dict[str, str]) -> None:
    lake_dir = Path(server_env["BEAZAP_LAKE_URI"])
    with serve(server_env) as (proc, base), Load(base, threads=6) as load:
        load.wait_for(100)
        os.killpg(proc.pid, signal.SIGKILL)
        proc.wait(timeout=30)
    first = list(load.acked)
    with serve(server_env) as (_proc, base), Load(base, threads=6) as again:
        again.wait_for(100)
    landed = set(bronze_receipts(lake_dir))
    assert set(first) <= landed
    assert set(again.acked) <= landed


def test_two_workers_append_to_the_same_table(server_env: dict[str, str]) -> None:
    lake_dir = Path(server_env["BEAZAP_LAKE_URI"])
    with serve(server_env, workers=2) as (_proc, base):
        with Load(base, threads=12, keepalive=False) as load:
            load.wait_for(300, timeout=120)
            # the kernel, not us, picks which worker accepts each connection: keep posting until
            # both worker processes have committed (a loaded machine can starve one for a while)
            deadline = time.monotonic() + 120
            while len(receiver_writers(lake_dir)) < 2 and time.monotonic() < deadline:
                load.wait_for(len(load.acked) + 50, timeout=60)
        metrics_text = httpx.get(f"{base}/metrics", timeout=10).text
    landed = bronze_receipts(lake_dir)
    assert set(load.acked) <= set(landed)
    assert len(landed) == len(set(landed)), "no batch committed twice"
    writers = receiver_writers(lake_dir)
    assert len(writers) == 2, writers  # both worker processes committed
    received = sum(
        float(line.rsplit(" ", 1)[1])
        for line in metrics_text.splitlines()
        if line.startswith("beazap_webhooks_received_total{")
    )
    assert received == len(landed)  # multiprocess metrics add up both workers
