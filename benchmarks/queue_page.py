"""Live queue page benchmark (``python -m benchmarks.queue_page``): the first render of ``/app/queue``.

One BeaZap server (uvicorn subprocess, the real app) on a scratch SQLite store (or ``--database-url``)
with ``--open`` open conversations in one account; a supervisor logged in through the form. Timed
over HTTP (gzip accepted, as a browser does), ``--runs`` times each, in the same run:

- ``/app/queue``: the whole account's queue, its first page (``PAGE_ROWS``, 200: the newest open
  conversations) rendered server-side, with the live stream's start point;
- ``/app/queue?instance_id=qa-2``: the same page for an instance with no conversation (the page's
  fixed cost: login check, options, template);
- ``/v1/conversations?status=open&limit=200``: the API's page of the same rows (the same data source).

The target is ≤ 500 ms for the full page with 5,000 open conversations; ratios are printed against
the empty page and the API page. Loopback only; the scratch folder is removed at the end.
"""

from __future__ import annotations

import argparse
import os
import re
import shutil
import statistics
import subprocess
import sys
import time
from pathlib import Path

import httpx

from benchmarks.servers import free_port, wait_healthy
from benchmarks.workdir import scratch_dir

ROOT = Path(__file__).resolve().parents[1]


def _pct(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))]


def _time(client: httpx.Client, path: str, runs: int) -> tuple[list[float], int, int]:
    """Milliseconds per GET (whole answer read), bytes on the wire and decoded size of the last one."""
    times = []
    wire = size = 0
    for _ in range(runs):
        started = time.perf_counter()
        with client.stream("GET", path) as resp:
            assert resp.status_code == 200, (path, resp.status_code)
            raw = b"".join(resp.iter_raw())
        times.append((time.perf_counter() - started) * 1000)
        wire = len(raw)
    size = len(client.get(path).content)
    return times, wire, size


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--open", type=int, default=5000, help="open conversations in the account")
    parser.add_argument("--runs", type=int, default=30)
    parser.add_argument("--database-url", default=None, help="default: a scratch SQLite file")
    args = parser.parse_args()

    work = scratch_dir("queue-page-")
    env = {
        "BEAZAP_LAKE_URI": str(work / "lake"),
        "BEAZAP_DATABASE_URL": args.database_url or f"sqlite:///{work / 'ops.db'}",
        "BEAZAP_SECRET_KEY_FILE": str(work / "secret.key"),
    }
    os.environ.update(env)
    (work / "lake").mkdir()
    from core.settings import get_settings

    get_settings.cache_clear()
    from api.web.console_queue import PAGE_ROWS
    from storage import migrate
    from storage.db import get_engine
    from tests.queue_world import PASSWORD, USERS, add_many, seed

    engine = get_engine(get_settings())
    migrate.upgrade(engine)
    seed(engine)
    add_many(engine, args.open)
    port = free_port()
    base = f"http://127.0.0.1:{port}"
    cmd = [sys.executable, "-m", "uvicorn", "api.app:create_app", "--factory", "--port", str(port)]
    server = subprocess.Popen([*cmd, "--log-level", "warning"], cwd=ROOT, env={**os.environ, **env})
    try:
        with httpx.Client(base_url=base, timeout=60, headers={"Accept-Encoding": "gzip"}) as client:
            wait_healthy(client)
            form = client.get("/app/login").text
            csrf = re.search(r'name="csrf" value="([^"]+)"', form).group(1)  # type: ignore[union-attr]
            login = {"email": USERS["supervisor"], "password": PASSWORD, "csrf": csrf, "next": "/app"}
            assert client.post("/app/login", data=login).status_code in (200, 303)
            page = client.get("/app/queue").text
            shown = page.count('<tr id="q-')
            assert shown == min(args.open, PAGE_ROWS), shown
            api_path = f"/v1/conversations?status=open&limit={PAGE_ROWS}"
            for path in ("/app/queue", "/app/queue?instance_id=qa-2", api_path):
                _time(client, path, 3)  # warm-up
            full = _time(client, "/app/queue", args.runs)
            empty = _time(client, "/app/queue?instance_id=qa-2", args.runs)
            api = _time(client, api_path, args.runs)
    finally:
        server.terminate()
        server.wait(timeout=30)
        engine.dispose()
        shutil.rmtree(work, ignore_errors=True)

    load = os.getloadavg()
    print(f"queue page, {args.open:,} open conversations, {args.runs} runs each; load average {load[0]:.1f}")
    for name, (times, wire, size) in (
        ("/app/queue (first page of rows)", full),
        ("/app/queue?instance_id=qa-2 (empty)", empty),
        (api_path, api),
    ):
        print(
            f"  {name:42s} p50 {statistics.median(times):7.1f} ms  p95 {_pct(times, 0.95):7.1f} ms  "
            f"{wire / 1024:8.1f} KiB on the wire ({size / 1024:8.1f} KiB)"
        )
    f50, e50, a50 = (statistics.median(x[0]) for x in (full, empty, api))
    print(f"  ratio full/empty p50 ×{f50 / e50:.1f}; full/API page p50 ×{f50 / a50:.1f}; target p95 ≤ 500 ms")


if __name__ == "__main__":
    main()
