"""Simulator throughput: rich simulation, direct bronze landing and the streaming bulk generator.

    uv run python -m benchmarks.simulator [--events 1000000] [--days 10] [--instances 4] [--workers 2]

Prints, measured in the same run:
- the rich simulator (``simulate``): deliveries generated per second, and ``write_bronze`` rows/s;
- the bulk generator (``write_bronze_bulk``): bronze rows per second end to end (generation + Delta
  commits, one per simulated day);
- the baseline: the same bulk rows built the naive way (nested dicts + ``json.dumps`` per event,
  ``datetime`` per row, then the same Delta write), on a sample, and the ratio bulk / baseline.
Target: bulk ≥ 100k events/s.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import random
import shutil
import time
from datetime import UTC, date, datetime

from benchmarks.workdir import scratch_dir


def _naive_rows(n: int, seed: int = 1) -> float:
    """Seconds to build and land ``n`` rows with per-event dicts and json.dumps (the baseline)."""
    import pyarrow as pa

    from beazap.simulator.sinks import append_webhooks, ensure_bronze, receipt_id
    from bronze.schema import WEBHOOK_EVENTS_SCHEMA
    from storage.lake import Lake

    rng = random.Random(seed)
    root = scratch_dir("simulator-naive-")
    lake = Lake(str(root))
    ensure_bronze(lake)
    started = time.perf_counter()
    rows: dict[str, list] = {k: [] for k in WEBHOOK_EVENTS_SCHEMA.names}
    t0 = datetime(2026, 3, 2, 12, tzinfo=UTC).timestamp()
    for i in range(n):
        t = t0 + i * 0.5
        body = {
            "event": "messages.upsert",
            "instance": "loja-01",
            "data": {
                "key": {
                    "remoteJid": f"5511{rng.randrange(10**9):09d}@s.whatsapp.net",
                    "fromMe": False,
                    "id": f"3A{rng.getrandbits(72):018X}",
                },
                "pushName": "Mariana",
                "status": "DELIVERY_ACK",
                "message": {"conversation": "Oi, meu pedido ainda não chegou"},
                "messageType": "conversation",
                "messageTimestamp": int(t),
                "instanceId": "5f3c2a9e-8d41-4b7a-9a0e-1c2d3e4f5a6b",
                "source": "android",
            },
            "destination": "https://beazap.example.com/webhooks/evolution",
            "date_time": datetime.fromtimestamp(t).strftime("%Y-%m-%dT%H:%M:%S.%f")[:-3] + "Z",
            "sender": "5511940001111@s.whatsapp.net",
            "server_url": "https://evo.example.com",
            "apikey": None,
        }
        payload = json.dumps(body, ensure_ascii=False, separators=(",", ":"))
        received = datetime.fromtimestamp(t + 0.1, UTC)
        rows["receipt_id"].append(receipt_id(received, i))
        rows["received_at"].append(received)
        rows["received_date"].append(received.date())
        rows["instance"].append("loja-01")
        rows["event"].append("messages.upsert")
        rows["source_ip"].append("203.0.113.10")
        rows["payload"].append(payload)
        rows["payload_hash"].append(hashlib.sha256(payload.encode()).hexdigest())
    append_webhooks(lake, pa.table(rows, schema=WEBHOOK_EVENTS_SCHEMA))
    seconds = time.perf_counter() - started
    shutil.rmtree(root, ignore_errors=True)
    return seconds


def _cpu_seconds() -> float:
    """CPU time of this process and its finished children (user + system): a load-independent cost."""
    import resource

    own = resource.getrusage(resource.RUSAGE_SELF)
    kids = resource.getrusage(resource.RUSAGE_CHILDREN)
    return own.ru_utime + own.ru_stime + kids.ru_utime + kids.ru_stime


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--events", type=int, default=1_000_000, help="bulk rows to write")
    parser.add_argument("--days", type=int, default=10)
    parser.add_argument("--instances", type=int, default=4)
    parser.add_argument("--baseline-sample", type=int, default=100_000)
    parser.add_argument("--workers", type=int, default=2, help="bulk worker processes (1 = writer thread only)")
    args = parser.parse_args()

    from beazap.simulator import SimulationConfig, simulate, write_bronze
    from beazap.simulator.bulk import write_bronze_bulk
    from core.logging import configure_logging
    from storage.lake import Lake

    configure_logging("WARNING", False)
    root = scratch_dir("simulator-")
    try:
        cfg = SimulationConfig(seed=1, instances=3, days=7, start=date(2026, 3, 2))
        t = time.perf_counter()
        sim = simulate(cfg)
        gen_s = time.perf_counter() - t
        n_rich = len(sim.deliveries)
        t = time.perf_counter()
        write_bronze(Lake(str(root / "rich")), sim)
        rich_write_s = time.perf_counter() - t
        print(f"rich simulate: {n_rich:,} deliveries + {len(sim.ops_events):,} actions + ground truth in {gen_s:.2f} s "
              f"= {n_rich / gen_s:,.0f} deliveries/s; write_bronze {n_rich / rich_write_s:,.0f} rows/s")  # fmt: skip

        cpu0 = _cpu_seconds()
        base_s = _naive_rows(args.baseline_sample)
        base_cpu = _cpu_seconds() - cpu0
        base_rate = args.baseline_sample / base_s
        print(f"baseline (dicts + json.dumps per event, same Delta write): {base_rate:,.0f} rows/s "
              f"({args.baseline_sample:,} rows in {base_s:.2f} s; "
              f"{args.baseline_sample / base_cpu:,.0f} rows per CPU-second)")  # fmt: skip

        bulk_cfg = SimulationConfig(seed=1, instances=args.instances, days=args.days, start=date(2026, 3, 2))
        best = 0.0
        for workers in sorted({1, args.workers}):
            cpu0 = _cpu_seconds()
            result = write_bronze_bulk(
                Lake(str(root / f"bulk-{workers}")), bulk_cfg, target_events=args.events, workers=workers
            )
            cpu = _cpu_seconds() - cpu0
            rate = result["events_per_second"]
            best = max(best, rate)
            print(f"bulk, {workers} worker(s): {result['webhook_events']:,} webhook rows + "
                  f"{result['ops_events']:,} ops rows in {result['seconds']:.1f} s = {rate:,.0f} events/s "
                  f"(ratio to baseline {rate / base_rate:.2f}x); CPU {cpu:.1f} s = "
                  f"{result['webhook_events'] / cpu:,.0f} events per CPU-second")  # fmt: skip
        print(f"target ≥ 100,000 events/s: {'met' if best >= 100_000 else 'NOT met'} (best {best:,.0f})")
    finally:
        shutil.rmtree(root, ignore_errors=True)


if __name__ == "__main__":
    main()
