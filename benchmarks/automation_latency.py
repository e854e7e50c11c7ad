"""Benchmark: how far gold lags bronze with the Dagster daemon running (target ≈ 1 minute).

    uv run python -m benchmarks.automation_latency [--rounds 3]

Starts ``dagster dev -w workspace.yaml`` (webserver + daemon) on loopback with a throw-away
``DAGSTER_HOME`` (``orchestration/dagster.yaml``) and lake; each round appends a batch of webhooks
(one simulated day) to bronze and measures the time until gold is rebuilt over them (the Delta version of
``gold/conversation_facts`` moves and its silver input includes the new messages). The path is
bronze observation → silver run → (next automation tick) gold's latest daily partition run; the
simulated days lie in the past, so that run finds them as changed ("late") days and rewrites them —
the late-data path. The baseline, measured in the same run, is the time the same silver + gold
builds take when called directly.
"""

from __future__ import annotations

import argparse
import contextlib
import os
import shutil
import signal
import subprocess
import sys
import time
from datetime import date
from pathlib import Path

from benchmarks.servers import free_port
from benchmarks.workdir import scratch_dir

ROOT = Path(__file__).resolve().parents[1]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--timeout", type=float, default=600.0, help="Give up on a round after this many seconds.")
    args = parser.parse_args()

    home = scratch_dir("automation-")
    dagster_home = home / "dagster"
    dagster_home.mkdir()
    shutil.copy(ROOT / "orchestration" / "dagster.yaml", dagster_home / "dagster.yaml")
    env = {
        **os.environ,
        "DAGSTER_HOME": str(dagster_home),
        "BEAZAP_LAKE_URI": str(home / "lake"),
        "BEAZAP_DATABASE_URL": f"sqlite:///{home / 'ops.db'}",
        "BEAZAP_SECRET_KEY_FILE": str(home / "secret.key"),
        "BEAZAP_LOG_LEVEL": "WARNING",
    }
    os.environ.update({k: v for k, v in env.items() if k.startswith("BEAZAP_")})
    sys.path.insert(0, str(ROOT))

    from core.settings import get_settings

    get_settings.cache_clear()
    from beazap.simulator import SimulationConfig, register_instances, simulate, write_bronze
    from gold.runner import build_gold
    from silver.pipeline import build_silver
    from storage import migrate
    from storage.db import get_engine
    from storage.lake import Lake

    settings = get_settings()
    lake = Lake.from_settings(settings)
    engine = get_engine(settings)
    migrate.upgrade(engine)
    worlds = [
        simulate(SimulationConfig(seed=100 + i, instances=2, days=1, start=date(2026, 3, 2 + i)))
        for i in range(args.rounds)
    ]
    register_instances(engine, worlds[0])

    proc = subprocess.Popen(
        [sys.executable, "-m", "dagster", "dev", "-w", "workspace.yaml", "-h", "127.0.0.1", "-p", str(free_port())],
        cwd=ROOT,
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        start_new_session=True,
    )
    latencies: list[float] = []
    try:
        for round_no in range(args.rounds):
            before = lake.version("gold/conversation_facts")
            t0 = time.monotonic()
            write_bronze(lake, worlds[round_no])
            bronze_version = lake.version("bronze/webhook_events")
            deadline = t0 + args.timeout
            while time.monotonic() < deadline:
                version = lake.version("gold/conversation_facts")
                if version is not None and version != before and _silver_caught_up(lake, bronze_version):
                    break
                time.sleep(1.0)  # polling the lake, bounded by the deadline
            else:
                raise TimeoutError(f"round {round_no}: gold did not follow bronze within {args.timeout:.0f} s")
            latencies.append(time.monotonic() - t0)
            print(f"round {round_no}: gold rebuilt {latencies[-1]:.1f} s after the bronze commit", flush=True)
    finally:
        os.killpg(proc.pid, signal.SIGTERM)  # dagster dev's own process group (start_new_session)
        with contextlib.suppress(subprocess.TimeoutExpired):
            proc.wait(timeout=30)
        with contextlib.suppress(ProcessLookupError):
            os.killpg(proc.pid, signal.SIGKILL)  # code servers left in the group

    t = time.perf_counter()
    build_silver(lake, full=True)
    build_gold(lake, engine=engine)
    baseline = time.perf_counter() - t
    print(f"\nbaseline (silver full rebuild + gold, called directly): {baseline:.1f} s")
    for i, seconds in enumerate(latencies):
        print(f"round {i}: {seconds:.1f} s behind bronze = {seconds / baseline:.1f} × baseline")
    shutil.rmtree(home, ignore_errors=True)


def _silver_caught_up(lake, bronze_version: int | None) -> bool:  # type: ignore[no-untyped-def]
    from silver.state import SilverState

    return bronze_version is not None and SilverState.load(lake).bronze_version >= bronze_version


if __name__ == "__main__":
    main()
