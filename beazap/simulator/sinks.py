"""Where simulated traffic goes: straight into bronze, or over HTTP to the receiver.

- :func:`write_bronze` appends every delivery to ``bronze/webhook_events`` (receipt id, received_at,
  payload text, sha256) and the actions to ``bronze/ops_events`` in large commits;
- :func:`post_deliveries` posts the deliveries to ``/webhooks/evolution`` (or the per-event URLs) with
  the instance token in the ``apikey`` header, like Evolution does, with bounded concurrency;
- :func:`register_instances` registers the simulated instances, teams and attendants in the
  operational store (idempotent; a known instance keeps its own token: no implicit rotation).
"""

from __future__ import annotations

import asyncio
import hashlib
from collections import Counter
from collections.abc import Iterable, Sequence
from datetime import datetime
from typing import TYPE_CHECKING, Any

import pyarrow as pa

from beazap.simulator.model import Delivery, Simulation
from core.logging import get_logger

if TYPE_CHECKING:
    from sqlalchemy import Engine

    from storage.lake import Lake

log = get_logger(__name__)

_ALPHABET = "0123456789ABCDEFGHJKMNPQRSTVWXYZ"
SOURCE_IP = "203.0.113.10"  # documentation range: clearly simulated


def receipt_id(received_at: datetime, seq: int) -> str:
    """Deterministic ULID-shaped id (26 Crockford base32 chars) sorting by receipt time, then seq."""
    ms = int(received_at.timestamp() * 1000)
    value = (ms << 80) | (seq & ((1 << 80) - 1))
    chars = []
    for _ in range(26):
        chars.append(_ALPHABET[value & 31])
        value >>= 5
    return "".join(reversed(chars))


def bronze_table(deliveries: Sequence[Delivery], *, seq_base: int = 0) -> pa.Table:
    """Arrow rows of ``bronze/webhook_events`` for ``deliveries``."""
    from bronze.schema import WEBHOOK_EVENTS_SCHEMA

    payloads = [d.payload for d in deliveries]
    received = [d.received_at for d in deliveries]
    return pa.table(
        {
            "receipt_id": [receipt_id(d.received_at, seq_base + i) for i, d in enumerate(deliveries)],
            "received_at": received,
            "received_date": [r.date() for r in received],
            "instance": [d.instance for d in deliveries],
            "event": [d.event for d in deliveries],
            "source_ip": [SOURCE_IP] * len(deliveries),
            "payload": payloads,
            "payload_hash": [hashlib.sha256(p.encode("utf-8")).hexdigest() for p in payloads],
        },
        schema=WEBHOOK_EVENTS_SCHEMA,
    )


def ensure_bronze(lake: Lake) -> None:
    from bronze.schema import OPS_EVENTS, WEBHOOK_EVENTS
    from bronze.tables import ensure_tables

    ensure_tables(lake, WEBHOOK_EVENTS, OPS_EVENTS)


def bulk_writer_properties() -> Any:
    """Parquet settings for large bronze appends: no dictionary and no min/max statistics on the long,
    unique payload/hash columns (computing them costs more than the whole encode) and light zstd."""
    from deltalake import ColumnProperties, WriterProperties

    plain = ColumnProperties(dictionary_enabled=False, statistics_enabled="NONE")
    return WriterProperties(
        compression="ZSTD",
        compression_level=1,
        column_properties={
            "payload": plain,
            "payload_hash": plain,
            "receipt_id": ColumnProperties(dictionary_enabled=False),
        },
    )


def append_webhooks(lake: Lake, table: pa.Table) -> None:
    from bronze.schema import WEBHOOK_EVENTS, WEBHOOK_EVENTS_PARTITIONS

    lake.write(
        WEBHOOK_EVENTS,
        table,
        mode="append",
        partition_by=WEBHOOK_EVENTS_PARTITIONS,
        writer_properties=bulk_writer_properties(),
    )


def append_ops(lake: Lake, rows: Sequence[dict[str, Any]]) -> None:
    from bronze.schema import OPS_EVENTS, OPS_EVENTS_PARTITIONS, OPS_EVENTS_SCHEMA

    if rows:
        table = pa.Table.from_pylist(list(rows), schema=OPS_EVENTS_SCHEMA)
        lake.write(OPS_EVENTS, table, mode="append", partition_by=OPS_EVENTS_PARTITIONS)


def write_bronze(lake: Lake, sim: Simulation, *, batch_rows: int = 200_000, ops: bool = True) -> dict[str, int]:
    """Append all deliveries (arrival order) and, unless ``ops=False``, the ops actions to bronze."""
    ensure_bronze(lake)
    commits = 0
    for start in range(0, len(sim.deliveries), batch_rows):
        append_webhooks(lake, bronze_table(sim.deliveries[start : start + batch_rows], seq_base=start))
        commits += 1
    if ops:
        append_ops(lake, sim.ops_events)
        commits += 1 if sim.ops_events else 0
    log.info("simulator.bronze_written", webhooks=len(sim.deliveries), ops_events=len(sim.ops_events), commits=commits)
    return {"webhook_events": len(sim.deliveries), "ops_events": len(sim.ops_events) if ops else 0, "commits": commits}


# --- HTTP -----------------------------------------------------------------------------------------


async def apost_deliveries(
    base_url: str,
    deliveries: Iterable[Delivery],
    tokens: dict[str, str],
    *,
    concurrency: int = 16,
    path: str = "/webhooks/evolution",
    retries: int = 5,
    timeout: float = 30.0,
    progress: Any = None,
    warmup_seconds: float = 15.0,
) -> dict[str, Any]:
    """Post ``deliveries`` (in order, ``concurrency`` at a time); 5xx and connection errors are retried
    with backoff, as Evolution does; 4xx are final. Returns counts per HTTP status.

    Warm-up: the first delivery of each instance is posted alone and, while the receiver answers 401
    (its credential cache has not seen a just-registered instance yet), retried for up to
    ``warmup_seconds``; the rest follow concurrently.
    """
    import logging

    import httpx

    logging.getLogger("httpx").setLevel(logging.WARNING)  # one INFO line per request otherwise
    statuses: Counter[str] = Counter()
    sem = asyncio.Semaphore(concurrency)
    base = base_url.rstrip("/") + path
    limits = httpx.Limits(max_connections=concurrency, max_keepalive_connections=concurrency)

    async with httpx.AsyncClient(timeout=timeout, limits=limits) as client:

        async def post(d: Delivery) -> None:
            headers = {"content-type": "application/json"}
            token = tokens.get(d.instance)
            if token:
                headers["apikey"] = token
            body = d.payload.encode("utf-8")
            delay = 0.05
            try:
                for attempt in range(retries + 1):
                    try:
                        resp = await client.post(base + d.path_suffix, content=body, headers=headers)
                        code = resp.status_code
                        if code < 500 or attempt == retries:
                            statuses[str(code)] += 1
                            return
                    except httpx.TransportError:
                        if attempt == retries:
                            statuses["error"] += 1
                            return
                    await asyncio.sleep(delay)
                    delay = min(delay * 2, 2.0)
            finally:
                sem.release()
                if progress is not None:
                    progress(1)

        async def warm(d: Delivery) -> None:
            loop = asyncio.get_running_loop()
            deadline = loop.time() + warmup_seconds
            headers = {"content-type": "application/json", "apikey": tokens.get(d.instance, "")}
            while loop.time() < deadline:
                try:
                    resp = await client.post(base + d.path_suffix, content=d.payload.encode("utf-8"), headers=headers)
                    if resp.status_code != 401:
                        statuses[str(resp.status_code)] += 1
                        if progress is not None:
                            progress(1)
                        return
                except httpx.TransportError:
                    pass
                await asyncio.sleep(0.2)
            await sem.acquire()
            await post(d)

        ordered = list(deliveries)
        first: dict[str, int] = {}
        for i, d in enumerate(ordered):
            first.setdefault(d.instance, i)
        if warmup_seconds > 0:
            await asyncio.gather(*(warm(ordered[i]) for i in first.values()))
            skip = set(first.values())
        else:
            skip = set()
        tasks = []
        for i, d in enumerate(ordered):
            if i in skip:
                continue
            await sem.acquire()
            tasks.append(asyncio.create_task(post(d)))
        await asyncio.gather(*tasks)
    total = sum(statuses.values())
    ok = sum(n for code, n in statuses.items() if code.startswith("2"))
    return {"posted": total, "accepted": ok, "failed": total - ok, "statuses": dict(sorted(statuses.items()))}


def post_deliveries(
    base_url: str,
    sim: Simulation,
    concurrency: int = 16,
    tokens: dict[str, str] | None = None,
    **kwargs: Any,
) -> dict[str, Any]:
    """Post every delivery of ``sim`` to the receiver at ``base_url`` (blocking)."""
    tokens = tokens or {i.id: i.token for i in sim.instances}
    report = asyncio.run(apost_deliveries(base_url, sim.deliveries, tokens, concurrency=concurrency, **kwargs))
    log.info("simulator.posted", **{k: v for k, v in report.items() if k != "statuses"})
    return report


# --- operational store ----------------------------------------------------------------------------


def register_instances(engine: Engine, sim: Simulation) -> dict[str, Any]:
    """Register ``sim``'s instances (with their tokens), teams and attendants; safe to run again.

    An instance that is already registered is left as it is: its webhook token is never replaced
    (a real sender may be using it, and Evolution never retries a 401) — rotating a credential is
    an explicit operator action (``beazap instance``). Instances whose stored token differs from
    this simulation's are listed in ``token_conflicts``: posting to them would be refused.
    """
    from sqlalchemy import insert, select

    from storage import secrets
    from storage.instances import add_instance
    from storage.tables import attendants, instances, teams

    added = kept = 0
    conflicts: list[str] = []
    for inst in sim.instances:
        with engine.connect() as conn:
            stored = conn.execute(select(instances.c.webhook_token_hash).where(instances.c.id == inst.id)).first()
        if stored is None:
            add_instance(engine, inst.id, inst.account_id, token=inst.token, timezone=inst.timezone)
            added += 1
            continue
        kept += 1
        if not stored[0] or not secrets.token_matches(inst.token, stored[0]):
            conflicts.append(inst.id)
    with engine.begin() as conn:
        have_teams = set(conn.execute(select(teams.c.id)).scalars())
        for t in sim.teams:
            if t.id not in have_teams:
                conn.execute(insert(teams).values(id=t.id, instance_id=t.instance_id, name=t.name))
        have_atts = set(conn.execute(select(attendants.c.id)).scalars())
        for a in sim.attendants:
            if a.id not in have_atts:
                conn.execute(
                    insert(attendants).values(id=a.id, instance_id=a.instance_id, team_id=a.team_id, name=a.name)
                )
    return {
        "instances_added": added,
        "instances_kept": kept,
        "token_conflicts": conflicts,
        "teams": len(sim.teams),
        "attendants": len(sim.attendants),
    }
