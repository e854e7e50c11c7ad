"""The lake's one reader (``Lake.dataset``) vs delta-rs' ``DeltaTable.to_pyarrow_dataset()``, same run.

    python -m benchmarks.lake_reader                    # 300k bronze events, 3 rounds
    python -m benchmarks.lake_reader --size 1000000 --rounds 3

Generates a bronze lake with the simulator's bulk mode, then times, each phase in a fresh process and
alternating the two readers round by round: (1) a DuckDB scan of ``bronze/webhook_events`` parsing
seven JSON fields, (2) a full silver rebuild (``build_silver(full=True)``, whose bronze source goes
through the reader). The baseline swaps ``Lake.dataset`` for delta-rs' dataset. Reports the median
seconds of each and the ratio reader/baseline (≤ 1.1: the single reader costs no speed). A child
whose interpreter aborts at exit (delta-rs' reader, exit 134) still reports: its figures are printed
before exit.
"""

from __future__ import annotations

import argparse
import json
import shutil
import statistics
import subprocess
import sys
import time
from datetime import date
from pathlib import Path
from typing import Any

from benchmarks.workdir import scratch_dir

ROOT = Path(__file__).resolve().parents[1]
MARK = "RESULT:"


def generate(root: str, size: int) -> dict[str, Any]:
    from beazap.simulator import SimulationConfig
    from beazap.simulator.bulk import write_bronze_bulk
    from storage.lake import Lake

    started = time.perf_counter()
    cfg = SimulationConfig(seed=7, instances=4, days=20, start=date(2026, 3, 1))
    result = write_bronze_bulk(Lake(root=root), cfg, target_events=size)
    return {"seconds": round(time.perf_counter() - started, 2), "rows": int(result.get("webhook_events", size))}


def _use_delta_rs_reader() -> None:
    from storage.lake import Lake

    Lake.dataset = lambda self, table, dt=None: (dt if dt is not None else self.open(table)).to_pyarrow_dataset()  # type: ignore[method-assign]


def scan(root: str, reader: str) -> dict[str, Any]:
    import duckdb

    from storage.lake import Lake

    if reader == "delta-rs":
        _use_delta_rs_reader()
    con = duckdb.connect()
    started = time.perf_counter()
    con.register("b", Lake(root=root).dataset("bronze/webhook_events"))
    rows, parsed = con.execute(
        """
        select count(*), count(x[3]) from (
            select json_extract_string(payload, ['$.event', '$.instance', '$.data.key.id', '$.data.key.remoteJid',
                                                 '$.data.key.fromMe', '$.data.messageTimestamp', '$.data.status']) x
            from b)
        """
    ).fetchall()[0]
    return {"seconds": round(time.perf_counter() - started, 3), "rows": rows, "parsed": parsed}


def silver_full(root: str, reader: str) -> dict[str, Any]:
    from silver.pipeline import build_silver
    from storage.lake import Lake

    if reader == "delta-rs":
        _use_delta_rs_reader()
    lake = Lake(root=root)
    shutil.rmtree(Path(root) / "silver", ignore_errors=True)  # a rebuild from nothing, every time
    started = time.perf_counter()
    stats = build_silver(lake, full=True)
    return {"seconds": round(time.perf_counter() - started, 3), "messages": stats["silver/messages"]["rows_total"]}


def _child(phase: str, *args: Any) -> dict[str, Any]:
    code = (
        "import json, logging, structlog, sys\n"
        "structlog.configure(wrapper_class=structlog.make_filtering_bound_logger(logging.WARNING))\n"
        "from benchmarks import lake_reader as m\n"
        f"out = m.{phase}(*{args!r})\n"
        f"print({MARK!r} + json.dumps(out), flush=True)\n"
    )
    done = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True)
    for line in done.stdout.splitlines():
        if line.startswith(MARK):
            return {**json.loads(line[len(MARK) :]), "exit": done.returncode}
    raise RuntimeError(f"{phase} failed (exit {done.returncode}): {done.stderr[-1500:]}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--size", type=int, default=300_000)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--keep", help="folder for the generated lake (kept and reused)")
    args = parser.parse_args()
    root = Path(args.keep) if args.keep else scratch_dir("lake_reader_")
    try:
        if not (root / "bronze" / "webhook_events").exists():
            print("generate", _child("generate", str(root), args.size), flush=True)
        times: dict[tuple[str, str], list[float]] = {}
        exits: dict[str, set[int]] = {"lake": set(), "delta-rs": set()}
        for i in range(args.rounds):
            readers = ("lake", "delta-rs") if i % 2 == 0 else ("delta-rs", "lake")
            for phase in ("scan", "silver_full"):
                for reader in readers:
                    out = _child(phase, str(root), reader)
                    times.setdefault((phase, reader), []).append(out["seconds"])
                    exits[reader].add(out["exit"])
                    print(f"round {i + 1} {phase:<11} {reader:<8} {out}", flush=True)
        for phase in ("scan", "silver_full"):
            ours, base = (statistics.median(times[(phase, r)]) for r in ("lake", "delta-rs"))
            print(f"{phase:<11} Lake.dataset {ours:.2f} s   delta-rs {base:.2f} s   ratio {ours / base:.2f}")
        print(f"child exit codes: Lake.dataset {sorted(exits['lake'])}, delta-rs {sorted(exits['delta-rs'])}")
    finally:
        if not args.keep:
            shutil.rmtree(root, ignore_errors=True)


if __name__ == "__main__":
    main()
