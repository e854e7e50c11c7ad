"""Ingest benchmark: the BeaZap receiver (durable bronze landing) against a bare FastAPI endpoint.

    uv run python -m benchmarks.ingest            # or: make bench-ingest
    uv run python -m benchmarks.ingest --duration 20 --connections 32

One run starts, one after the other, on loopback and with the same uvicorn settings (1 worker):

(a) a bare FastAPI app whose endpoint only parses the JSON body and answers 200;
(b) ``beazap serve`` — the real receiver: auth, checks, group commit to ``bronze/webhook_events``
    on a local Delta lake, 200 only after the commit;

and loads both with the same client and the same simulator payloads (``beazap.simulator``; the
Evolution samples if the simulator is unavailable): ``wrk`` when installed
(``apt-get install -y wrk``), else a built-in asyncio load generator. It prints req/s of each,
the ratio b/a and b's p50/p99 latency, and checks that every 2xx of (b) is in bronze.
Targets: ratio ≥ 0.6, p99 ≤ 100 ms. ``BEAZAP_BRONZE_FSYNC=false`` (and the other group-commit
settings) are passed to (b); ``--commit-cost N`` only measures the latency of N bronze commits with
fsync on and off, interleaved, in process.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import shutil
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import orjson
from fastapi import FastAPI, Request, Response

from benchmarks.servers import free_port
from benchmarks.workdir import scratch_dir

ROOT = Path(__file__).resolve().parents[1]
SAMPLES = ROOT / "tests" / "data" / "evolution"


# --- (a) the baseline app -------------------------------------------------------------------------


def bare_app() -> FastAPI:
    """A FastAPI app that only parses the JSON body and answers 200 (uvicorn factory)."""
    app = FastAPI()

    @app.post("/webhooks/evolution")
    @app.post("/webhooks/evolution/{suffix}")
    async def receive(request: Request) -> Response:
        doc = orjson.loads(await request.body())
        return Response(orjson.dumps({"status": "ok", "event": doc.get("event")}), media_type="application/json")

    @app.get("/readyz")
    async def ready() -> dict[str, str]:
        return {"status": "ok"}

    return app


# --- payloads -------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Post:
    path: str
    body: str
    token: str
    instance: str


def simulator_posts(limit: int) -> tuple[list[Post], list[tuple[str, str]], str]:
    """Posts from the traffic simulator (instances with their tokens), or the samples."""
    try:
        from beazap.simulator import SimulationConfig, simulate

        sim = simulate(SimulationConfig(seed=11, instances=3, days=2))
        tokens = {i.id: i.token for i in sim.instances}
        posts = [
            Post("/webhooks/evolution" + d.path_suffix, d.payload, tokens[d.instance], d.instance)
            for d in sim.deliveries[:limit]
        ]
        return posts, list(tokens.items()), f"simulator ({len(posts)} distinct deliveries)"
    except Exception as exc:  # simulator missing or broken: fall back to the samples
        print(f"simulator unavailable ({type(exc).__name__}: {exc}); using the Evolution samples", file=sys.stderr)
        posts = []
        for path in sorted(SAMPLES.glob("*.json")):
            body = path.read_text()
            posts.append(Post("/webhooks/evolution", body, "bench-token", json.loads(body)["instance"]))
        instances = sorted({p.instance for p in posts})
        return posts, [(i, "bench-token") for i in instances], f"samples ({len(posts)} bodies)"


# --- servers --------------------------------------------------------------------------------------


@contextmanager
def server(cmd: list[str], env: dict[str, str], port: int) -> Iterator[tuple[str, int]]:
    """Start ``cmd``, wait for ``/readyz``; yields (base URL, process id)."""
    proc = subprocess.Popen(cmd, cwd=ROOT, env=env, start_new_session=True)
    base = f"http://127.0.0.1:{port}"
    try:
        import httpx

        deadline = time.monotonic() + 90
        while True:
            try:
                if httpx.get(base + "/readyz", timeout=2).status_code == 200:
                    break
            except httpx.HTTPError:
                pass
            if proc.poll() is not None:
                raise SystemExit(f"server exited early: {' '.join(cmd)}")
            if time.monotonic() > deadline:
                raise SystemExit("server not ready within 90 s")
            time.sleep(0.1)
        yield base, proc.pid
    finally:
        os.killpg(proc.pid, signal.SIGTERM)
        try:
            proc.wait(timeout=30)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)


# --- load generators ------------------------------------------------------------------------------

WRK_SCRIPT = """
local posts = {
%s
}
local i = 0
request = function()
  i = (i %% #posts) + 1
  local p = posts[i]
  return wrk.format("POST", p[1], {["Content-Type"] = "application/json", ["apikey"] = p[2]}, p[3])
end
done = function(summary, latency, requests)
  io.write(string.format(
    "BENCH_JSON {\\"requests\\": %%d, \\"duration_us\\": %%d, \\"non2xx\\": %%d, \\"errors\\": %%d, "
    .. "\\"p50_us\\": %%d, \\"p99_us\\": %%d, \\"max_us\\": %%d}\\n",
    summary.requests, summary.duration, summary.errors.status,
    summary.errors.connect + summary.errors.read + summary.errors.write + summary.errors.timeout,
    latency:percentile(50), latency:percentile(99), latency.max))
end
"""


def _lua_string(text: str) -> str:
    level = 1
    while f"]{'=' * level}]" in text:
        level += 1
    eq = "=" * level
    return f"[{eq}[{text}]{eq}]"


def wrk_script(posts: list[Post], path: Path) -> Path:
    rows = ",\n".join(f"  {{{_lua_string(p.path)}, {_lua_string(p.token)}, {_lua_string(p.body)}}}" for p in posts)
    path.write_text(WRK_SCRIPT % rows)
    return path


def run_wrk(base: str, script: Path, connections: int, duration: int, threads: int) -> dict[str, Any]:
    out = subprocess.run(
        ["wrk", f"-t{threads}", f"-c{connections}", f"-d{duration}s", "--timeout", "10s", "-s", str(script), base],
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    line = next(x for x in out.splitlines() if x.startswith("BENCH_JSON "))
    stats = json.loads(line.removeprefix("BENCH_JSON "))
    ok = stats["requests"] - stats["non2xx"]
    return {
        "rps": stats["requests"] / (stats["duration_us"] / 1e6),
        "requests": stats["requests"],
        "ok": ok,
        "non2xx": stats["non2xx"],
        "errors": stats["errors"],
        "p50_ms": stats["p50_us"] / 1000,
        "p99_ms": stats["p99_us"] / 1000,
        "max_ms": stats["max_us"] / 1000,
    }


def run_python_load(base: str, posts: list[Post], connections: int, duration: int) -> dict[str, Any]:
    """Closed-loop asyncio load: ``connections`` keep-alive connections posting back to back."""
    import httpx

    latencies: list[float] = []
    counts = {"ok": 0, "non2xx": 0, "errors": 0}

    async def worker(client: httpx.AsyncClient, offset: int, stop_at: float) -> None:
        i = offset
        while time.perf_counter() < stop_at:
            p = posts[i % len(posts)]
            i += connections
            started = time.perf_counter()
            try:
                r = await client.post(p.path, content=p.body, headers={"apikey": p.token})
            except httpx.HTTPError:
                counts["errors"] += 1
                continue
            latencies.append(time.perf_counter() - started)
            counts["ok" if r.status_code < 300 else "non2xx"] += 1

    async def main() -> float:
        limits = httpx.Limits(max_connections=connections, max_keepalive_connections=connections)
        async with httpx.AsyncClient(base_url=base, limits=limits, timeout=10) as client:
            started = time.perf_counter()
            stop_at = started + duration
            await asyncio.gather(*(worker(client, k, stop_at) for k in range(connections)))
            return time.perf_counter() - started

    elapsed = asyncio.run(main())
    latencies.sort()
    pick = lambda q: latencies[min(len(latencies) - 1, int(q * len(latencies)))] * 1000 if latencies else 0.0  # noqa: E731
    total = counts["ok"] + counts["non2xx"]
    return {
        "rps": total / elapsed,
        "requests": total,
        **counts,
        "p50_ms": pick(0.50),
        "p99_ms": pick(0.99),
        "max_ms": latencies[-1] * 1000 if latencies else 0.0,
    }


# --- server CPU and profile -----------------------------------------------------------------------


def group_cpu_seconds(pgid: int) -> float:
    """User + system CPU seconds used so far by every live process of group ``pgid`` (Linux /proc).

    CPU per request is steadier than req/s on a shared machine: other people's load slows both
    servers' wall clock, not the work each request costs. Returns NaN where /proc is missing.
    """
    tick = os.sysconf("SC_CLK_TCK") if hasattr(os, "sysconf") else 100
    total = 0
    found = False
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            fields = stat.read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        if int(fields[2]) == pgid:  # fields after "(comm)": state ppid pgrp … utime(11) stime(12)
            total += int(fields[11]) + int(fields[12])
            found = True
    return total / tick if found else float("nan")


@contextmanager
def measured_cpu(pgid: int, into: dict[str, Any]) -> Iterator[None]:
    """Adds ``cpu_s`` (server CPU seconds spent inside the block) to ``into``."""
    before = group_cpu_seconds(pgid)
    yield
    into["cpu_s"] = group_cpu_seconds(pgid) - before


@contextmanager
def py_spy(pid: int, seconds: int, out: Path | None) -> Iterator[None]:
    """Sample ``pid`` (and its worker processes) with py-spy while the block runs, when ``out`` is set.

    ``uv run --with py-spy python -m benchmarks.ingest --profile DIR``. Only threads holding the GIL
    are sampled (``--gil``: where the interpreter's time goes, not threads waiting on fsync), and
    ``--nonblocking`` so the sampler does not pause the server it measures.
    """
    if out is None:
        yield
        return
    exe = shutil.which("py-spy")
    if exe is None:
        raise SystemExit("--profile needs py-spy on PATH: uv run --with py-spy python -m benchmarks.ingest …")
    cmd = [exe, "record", "--pid", str(pid), "--subprocesses", "--nonblocking", "--gil", "--rate", "250"]
    cmd += ["--format", "raw", "--duration", str(seconds), "--output", str(out)]
    proc = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        yield
    finally:
        proc.wait(timeout=seconds + 60)


PROJECT_PACKAGES = ("api/", "bronze/", "core/", "storage/", "beazap/commands/")


def _frame_name(frame: str) -> str:
    """``func (package/module.py:12)`` → ``package/module.py:func`` (py-spy's short paths)."""
    name, _, where = frame.partition(" (")
    return f"{where.rsplit(':', 1)[0]}:{name.strip()}"


def profile_table(raw: Path, top: int = 15) -> tuple[list[tuple[str, float]], list[tuple[str, float]]]:
    """From py-spy's collapsed stacks: the functions with most samples on top of the stack (self %),
    and the project's functions with most samples anywhere in the stack (inclusive %)."""
    inclusive: dict[str, int] = {}
    own: dict[str, int] = {}
    total = 0
    for line in raw.read_text().splitlines():
        stack, _, count_text = line.rpartition(" ")
        if not stack or not count_text.isdigit():
            continue
        count = int(count_text)
        frames = [_frame_name(f) for f in stack.split(";")[1:]]  # first item: the process
        if not frames:
            continue
        total += count
        for name in set(frames):
            inclusive[name] = inclusive.get(name, 0) + count
        own[frames[-1]] = own.get(frames[-1], 0) + count
    if not total:
        return [], []
    by_self = sorted(own, key=lambda k: -own[k])[:top]
    ours = sorted((k for k in inclusive if k.startswith(PROJECT_PACKAGES)), key=lambda k: -inclusive[k])[:top]
    return [(k, 100 * own[k] / total) for k in by_self], [(k, 100 * inclusive[k] / total) for k in ours]


# --- the run --------------------------------------------------------------------------------------


def request_histogram(base: str) -> dict[float, float]:
    """Cumulative bucket counts of the receiver's own request-time histogram (status 200)."""
    import httpx

    buckets: dict[float, float] = {}
    for line in httpx.get(base + "/metrics", timeout=10).text.splitlines():
        if line.startswith("beazap_webhook_request_seconds_bucket{") and 'status="200"' in line:
            le = line.split('le="', 1)[1].split('"', 1)[0]
            buckets[float("inf") if le == "+Inf" else float(le)] = float(line.rsplit(" ", 1)[1])
    return buckets


def histogram_quantile(before: dict[float, float], after: dict[float, float], q: float) -> float:
    """Upper bucket bound (ms) under which a ``q`` share of the requests between two scrapes finished."""
    bounds = sorted(after)
    counts = [after[b] - before.get(b, 0.0) for b in bounds]
    total = counts[-1] if counts else 0.0
    for bound, count in zip(bounds, counts, strict=True):
        if total and count >= q * total:
            return bound * 1000
    return float("nan")


def bronze_rows(lake_dir: Path) -> tuple[int, int]:
    from storage.lake import Lake

    lake = Lake(root=str(lake_dir))
    dt = lake.open("bronze/webhook_events")
    return lake.dataset("bronze/webhook_events", dt).count_rows(), dt.version()


def commit_cost(commits: int, rows: int) -> None:
    """Per-commit latency of the bronze appender with and without fsync (interleaved, same lake disk)."""
    from datetime import UTC, datetime

    from bronze.rows import webhook_event_row
    from bronze.writer import WEBHOOK_EVENTS_TARGET, DeltaAppender
    from storage.lake import Lake

    work = scratch_dir("ingest-fsync-")
    try:
        appenders = {}
        for flag in (True, False):
            lake = Lake(str(work / ("fsync" if flag else "nofsync")))
            appenders[flag] = DeltaAppender(lake, WEBHOOK_EVENTS_TARGET, app_id=f"bench-{flag}", fsync=flag)
            appenders[flag].ensure_table()
        body = '{"event":"messages.upsert","instance":"bench","data":{"key":{"id":"%d"}}}'
        times: dict[bool, list[float]] = {True: [], False: []}
        for n in range(commits):
            for flag in (True, False) if n % 2 else (False, True):
                now = datetime.now(UTC)
                batch = [
                    webhook_event_row(
                        receipt_id=f"{n}-{i}",
                        received_at=now,
                        instance="bench",
                        event="messages.upsert",
                        source_ip=None,
                        payload=body % i,
                    )
                    for i in range(rows)
                ]
                started = time.perf_counter()
                appenders[flag].append(batch)
                times[flag].append(time.perf_counter() - started)
        for flag in (True, False):
            values = sorted(times[flag])
            p50 = values[len(values) // 2] * 1000
            p99 = values[min(len(values) - 1, int(len(values) * 0.99))] * 1000
            print(
                f"fsync={'on ' if flag else 'off'}  {commits} commits of {rows} rows: "
                f"p50 {p50:.2f} ms  p99 {p99:.2f} ms"
            )
    finally:
        shutil.rmtree(work, ignore_errors=True)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--duration", type=int, default=15, help="seconds of load per server")
    parser.add_argument("--warmup", type=int, default=3, help="seconds of load before measuring")
    parser.add_argument("--connections", type=int, default=32)
    parser.add_argument("--threads", type=int, default=2, help="wrk threads")
    parser.add_argument("--workers", type=int, default=1, help="uvicorn workers of both servers")
    parser.add_argument("--payloads", type=int, default=2000, help="distinct simulator deliveries cycled")
    parser.add_argument("--client", choices=["auto", "wrk", "python"], default="auto")
    parser.add_argument(
        "--delta-rs", action="store_true", help="also run (c): the receiver with plain delta-rs commits (no fast path)"
    )
    parser.add_argument(
        "--profile",
        type=Path,
        metavar="DIR",
        help="sample (b) with py-spy during the measured run; raw stacks in DIR (uv run --with py-spy …)",
    )
    parser.add_argument(
        "--commit-cost",
        type=int,
        default=0,
        metavar="N",
        help="only measure N bronze commits (15 rows) with fsync on and off, interleaved, then exit",
    )
    args = parser.parse_args(argv)
    if args.commit_cost:
        commit_cost(args.commit_cost, 15)
        return 0

    client = args.client
    if client == "auto":
        client = "wrk" if shutil.which("wrk") else "python"
    posts, instances, source = simulator_posts(args.payloads)
    work = scratch_dir("ingest-")
    try:
        env = {k: v for k, v in os.environ.items() if not k.startswith(("BEAZAP_", "PROMETHEUS_"))}
        env.update(
            BEAZAP_LAKE_URI=str(work / "lake"),
            BEAZAP_DATABASE_URL=f"sqlite:///{work / 'ops.db'}",
            BEAZAP_SECRET_KEY_FILE=str(work / "secret.key"),
            BEAZAP_LOG_LEVEL="WARNING",
        )
        for key in (
            "BEAZAP_GROUP_COMMIT_MAX_ROWS",
            "BEAZAP_GROUP_COMMIT_MAX_WAIT_MS",
            "BEAZAP_GROUP_COMMIT_LANES",
            "BEAZAP_BRONZE_COMPACT_EVERY_COMMITS",
            "BEAZAP_BRONZE_FSYNC",
        ):
            if key in os.environ:
                env[key] = os.environ[key]
        _register(env, instances)
        script = wrk_script(posts, work / "load.lua") if client == "wrk" else None

        def load(base: str, seconds: int) -> dict[str, Any]:
            if client == "wrk" and script is not None:
                return run_wrk(base, script, args.connections, seconds, args.threads)
            return run_python_load(base, posts, args.connections, seconds)

        uvicorn_common = ["--log-level", "warning", "--no-access-log", "--workers", str(args.workers)]
        serve_cmd = [sys.executable, "-m", "beazap", "serve", "--workers", str(args.workers), "--port"]
        results: dict[str, dict[str, Any]] = {}
        port = free_port()
        bare_cmd = [sys.executable, "-m", "uvicorn", "--factory", "benchmarks.ingest:bare_app", "--port", str(port)]
        cpu: dict[str, dict[str, Any]] = {"bare": {}, "beazap": {}}
        profile = args.profile / "receiver.txt" if args.profile else None
        if args.profile:
            args.profile.mkdir(parents=True, exist_ok=True)
        with server(bare_cmd + uvicorn_common, env, port) as (base, pid):
            if args.warmup:
                load(base, args.warmup)
            with measured_cpu(pid, cpu["bare"]):
                results["bare"] = load(base, args.duration)
        port = free_port()
        with server([*serve_cmd, str(port)], env, port) as (base, pid):
            if args.warmup:
                load(base, args.warmup)
            rows_before, _ = bronze_rows(work / "lake")
            hist_before = request_histogram(base)
            with measured_cpu(pid, cpu["beazap"]), py_spy(pid, args.duration, profile):
                results["beazap"] = load(base, args.duration)
            time.sleep(0.5)  # let in-flight requests of the closed connections finish committing
            hist_after = request_histogram(base)
        rows_after, version = bronze_rows(work / "lake")
        if args.delta_rs:
            port = free_port()
            slow_env = {**env, "BEAZAP_BRONZE_FAST_COMMIT": "false", "BEAZAP_LAKE_URI": str(work / "lake-delta-rs")}
            with server([*serve_cmd, str(port)], slow_env, port) as (base, _pid):
                if args.warmup:
                    load(base, args.warmup)
                results["delta-rs"] = load(base, args.duration)

        bare, real = results["bare"], results["beazap"]
        ratio = real["rps"] / bare["rps"] if bare["rps"] else 0.0
        landed = rows_after - rows_before
        print(f"\nBeaZap ingest benchmark — client {client}, {args.connections} connections, {args.duration}s each")
        print(f"payloads: {source}; lake: local Delta; {args.workers} uvicorn worker(s) each")
        rows_shown = [("(a) bare FastAPI", bare), ("(b) BeaZap receiver", real)]
        if "delta-rs" in results:
            rows_shown.append(("(c) delta-rs commits", results["delta-rs"]))
        for name, r in rows_shown:
            print(
                f"{name:22s} {r['rps']:9.0f} req/s   p50 {r['p50_ms']:6.1f} ms   p99 {r['p99_ms']:6.1f} ms   "
                f"max {r['max_ms']:7.1f} ms   non-2xx {r['non2xx']}  errors {r['errors']}"
            )
        print(f"ratio b/a = {ratio:.2f} (target >= 0.6)   p99 of b = {real['p99_ms']:.1f} ms (target <= 100)")
        print(
            "server-side request time of b (its own histogram, bucket bounds): "
            f"p50 <= {histogram_quantile(hist_before, hist_after, 0.5):g} ms, "
            f"p99 <= {histogram_quantile(hist_before, hist_after, 0.99):g} ms"
        )
        per_request = {k: 1e6 * cpu[k].get("cpu_s", float("nan")) / max(1, results[k]["requests"]) for k in cpu}
        print(
            f"server CPU per request: a {per_request['bare']:.0f} µs, b {per_request['beazap']:.0f} µs "
            f"(b/a = {per_request['beazap'] / per_request['bare']:.2f}; all processes of each server)"
        )
        if profile is not None and profile.exists():
            by_self, ours = profile_table(profile)
            print(f"\nprofile of b (py-spy --gil, {profile}), % of samples holding the GIL")
            print("  self (top of stack):")
            for name, share in by_self:
                print(f"    {share:5.1f}  {name}")
            print("  project functions, inclusive:")
            for name, share in ours:
                print(f"    {share:5.1f}  {name}")
        if "delta-rs" in results and results["delta-rs"]["rps"]:
            print(f"fast commits vs plain delta-rs commits: b/c = {real['rps'] / results['delta-rs']['rps']:.2f}")
        print(
            f"bronze: {landed} rows landed during the measured run for {real['ok']} acknowledged "
            f"(>= expected: in-flight requests at the end also commit); table version {version}, "
            f"~{landed / max(1, version):.0f} rows/commit over the whole run"
        )
        ok = landed >= real["ok"] and real["non2xx"] == 0
        if not ok:
            print("INTEGRITY PROBLEM: acknowledged rows missing or non-2xx answers", file=sys.stderr)
            return 1
        return 0
    finally:
        shutil.rmtree(work, ignore_errors=True)


def _register(env: dict[str, str], instances: list[tuple[str, str]]) -> None:
    code = (
        "import sys, json\n"
        "from storage import migrate\nfrom storage.db import get_engine\nfrom storage.instances import add_instance\n"
        "e = get_engine(); migrate.upgrade(e)\n"
        "for name, token in json.loads(sys.argv[1]):\n    add_instance(e, name, 'bench', token=token)\n"
    )
    subprocess.run([sys.executable, "-c", code, json.dumps(instances)], cwd=ROOT, env=env, check=True)


if __name__ == "__main__":
    raise SystemExit(main())
