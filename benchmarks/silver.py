"""Silver benchmark: full rebuild and a 10k-event incremental batch on bronze lakes of 1M and 10M events.

    python -m benchmarks.silver                      # 1M and 10M message events
    python -m benchmarks.silver --sizes 1000000      # only 1M
    python -m benchmarks.silver --keep benchmarks/.work/lakes    # keep (and reuse) the generated lakes

For each size: the simulator's bulk mode writes the bronze lake (one commit per simulated day, 20 days
in one month), then, each phase in its own process so peak RSS is per phase:

1. **bare scan** — DuckDB reads bronze and only parses the payloads (7 JSON fields): the floor;
2. **full rebuild** — ``build_silver(lake, full=True)``: seconds, events/s, peak RSS, ratio to (1);
3. **incremental** — 10k more webhooks (rich simulator: acks, edits, reactions, LIDs…) in the same
   month are appended to bronze and ``build_silver(lake)`` runs; the ratio between the two lake sizes
   shows whether the cost grows with the batch or with the history.

Targets (issue 4, 2-core machine): 10M full ≤ 120 s and ≤ 4 GiB; full/bare ≤ 3; incremental ≤ 3 s and
10M/1M ≤ 1.5.
"""

from __future__ import annotations

import argparse
import multiprocessing as mp
import resource
import shutil
import time
from datetime import date
from pathlib import Path
from typing import Any

from benchmarks.workdir import scratch_dir

BULK_DAYS = 20
BULK_START = date(2026, 3, 1)
INC_START = date(2026, 3, 21)  # the day after the bulk lake: same month partition as the history
INC_EVENTS = 10_000


def _peak_rss_mib() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024.0


def _in_child(fn: Any, *args: Any) -> dict[str, Any]:
    """Run ``fn(*args)`` in a fresh process; returns its result plus ``peak_rss_mib``."""
    ctx = mp.get_context("spawn")
    with ctx.Pool(1) as pool:
        return pool.apply(_child_main, (fn, args))


def _child_main(fn: Any, args: tuple[Any, ...]) -> dict[str, Any]:
    import logging

    import structlog

    structlog.configure(wrapper_class=structlog.make_filtering_bound_logger(logging.WARNING))
    out = fn(*args)
    out["peak_rss_mib"] = round(_peak_rss_mib(), 1)
    return out


# --- phases (run in children) ---------------------------------------------------------------------


def generate(root: str, size: int) -> dict[str, Any]:
    from beazap.simulator import SimulationConfig
    from beazap.simulator.bulk import write_bronze_bulk
    from storage.lake import Lake

    lake = Lake(root=root)
    started = time.perf_counter()
    cfg = SimulationConfig(seed=7, instances=4, days=BULK_DAYS, start=BULK_START)
    result = write_bronze_bulk(lake, cfg, target_events=size)
    return {"seconds": round(time.perf_counter() - started, 2), "rows": int(result.get("webhook_events", size))}


def bare_scan(root: str) -> dict[str, Any]:
    import duckdb

    from bronze.schema import WEBHOOK_EVENTS
    from storage.lake import Lake

    lake = Lake(root=root)
    con = duckdb.connect()
    con.register("b", lake.dataset(WEBHOOK_EVENTS))
    started = time.perf_counter()
    rows, parsed = con.execute(
        """
        select count(*), count(x[3]) from (
            select json_extract_string(payload, ['$.event', '$.instance', '$.data.key.id', '$.data.key.remoteJid',
                                                 '$.data.key.fromMe', '$.data.messageTimestamp', '$.data.status']) x
            from b)
        """
    ).fetchall()[0]
    return {"seconds": round(time.perf_counter() - started, 2), "rows": rows, "parsed": parsed}


def full_rebuild(root: str) -> dict[str, Any]:
    from silver.pipeline import build_silver
    from storage.lake import Lake

    started = time.perf_counter()
    stats = build_silver(Lake(root=root), full=True)
    return {
        "seconds": round(time.perf_counter() - started, 2),
        "messages": stats["silver/messages"]["rows_total"],
        "conversations": stats["silver/conversations"]["rows_total"],
    }


def append_increment(root: str, seed: int) -> dict[str, Any]:
    from beazap.simulator import SimulationConfig, bronze_table, simulate
    from beazap.simulator.sinks import append_ops, append_webhooks
    from storage.lake import Lake

    lake = Lake(root=root)
    # the rich simulator sends ≈ 5 webhooks per conversation: 600 a day give 12-13k, cut to the first 10k
    sim = simulate(SimulationConfig(seed=seed, instances=4, days=1, start=INC_START, conversations_per_day=600))
    deliveries = sim.deliveries[:INC_EVENTS]
    if len(deliveries) < INC_EVENTS:
        raise RuntimeError(f"increment has {len(deliveries)} webhooks, fewer than {INC_EVENTS}")
    append_webhooks(lake, bronze_table(deliveries, seq_base=10**9))
    last = deliveries[-1].received_at
    append_ops(lake, [r for r in sim.ops_events if r["occurred_at"] <= last])
    return {"rows": len(deliveries)}


def incremental(root: str) -> dict[str, Any]:
    from silver.pipeline import build_silver
    from storage.lake import Lake

    started = time.perf_counter()
    stats = build_silver(Lake(root=root))
    return {
        "seconds": round(time.perf_counter() - started, 2),
        "messages_written": stats["silver/messages"]["rows_written"],
        "conversations_written": stats["silver/conversations"]["rows_written"],
    }


# --- driver ---------------------------------------------------------------------------------------


def run(sizes: list[int], keep: str | None) -> list[dict[str, Any]]:
    base = Path(keep) if keep else scratch_dir("silver-")
    results = []
    for size in sizes:
        root = base / f"lake-{size}"
        row: dict[str, Any] = {"size": size}
        if not (root / "bronze" / "webhook_events").exists():
            shutil.rmtree(root, ignore_errors=True)
            row["generate"] = _in_child(generate, str(root), size)
            print(f"[{size:,}] bronze generated: {row['generate']}", flush=True)
        row["bare"] = _in_child(bare_scan, str(root))
        print(f"[{size:,}] bare DuckDB parse: {row['bare']}", flush=True)
        row["full"] = _in_child(full_rebuild, str(root))
        print(f"[{size:,}] full rebuild: {row['full']}", flush=True)
        _in_child(append_increment, str(root), 1000 + size % 997)
        row["inc"] = _in_child(incremental, str(root))
        print(f"[{size:,}] incremental {INC_EVENTS:,} events: {row['inc']}", flush=True)
        results.append(row)
        if not keep:
            shutil.rmtree(root, ignore_errors=True)
    _report(results)
    return results


def _report(results: list[dict[str, Any]]) -> None:
    print(
        "\n| bronze events | full rebuild | events/s | peak RSS | bare parse | full/bare | incremental 10k | inc RSS |"
    )
    print("| --- | --- | --- | --- | --- | --- | --- | --- |")
    for r in results:
        rows = r["bare"]["rows"]
        full_s, bare_s = r["full"]["seconds"], r["bare"]["seconds"]
        print(
            f"| {rows:,} | {full_s:.1f} s | {rows / full_s:,.0f} | {r['full']['peak_rss_mib'] / 1024:.2f} GiB "
            f"| {bare_s:.1f} s | {full_s / bare_s:.2f} | {r['inc']['seconds']:.2f} s "
            f"| {r['inc']['peak_rss_mib'] / 1024:.2f} GiB |"
        )
    if len(results) >= 2:
        ratio = results[-1]["inc"]["seconds"] / results[0]["inc"]["seconds"]
        print(f"\nincremental ratio {results[-1]['size']:,} / {results[0]['size']:,} lake: {ratio:.2f}")


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--sizes", type=int, nargs="+", default=[1_000_000, 10_000_000])
    parser.add_argument("--keep", help="folder for the generated lakes (kept and reused)")
    args = parser.parse_args(argv)
    run(args.sizes, args.keep)


if __name__ == "__main__":
    main()
