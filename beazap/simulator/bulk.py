"""Streaming bulk generator: tens of millions of bronze rows, day by day, without holding the lake.

:func:`write_bronze_bulk` writes Evolution-shaped webhooks straight into ``bronze/webhook_events``
(and their operational actions into ``bronze/ops_events``) one simulated day per Delta commit.
It trades the rich simulator's variety for speed: bodies are built from string templates (no
``json.dumps`` of nested dicts), ids come from counters, and only the common events are produced —
inbound text/media upserts, ``send.message`` and phone-app upserts, status acks (out of order now
and then), presence, duplicates — with ``assign``/``resolve``/``message_sent`` actions. Each
conversation uses its own contact, so sessionization is unambiguous. There is no ground truth file
in this mode (use :func:`beazap.simulator.simulate` for exactness tests).
"""

from __future__ import annotations

import hashlib
import itertools
import json
import math
import random
import time
from collections import Counter
from concurrent.futures import Future, ProcessPoolExecutor, ThreadPoolExecutor
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import TYPE_CHECKING, Any
from zoneinfo import ZoneInfo

import pyarrow as pa
import pyarrow.compute

from beazap.simulator import payloads as pl
from beazap.simulator.config import SimulationConfig
from beazap.simulator.generate import build_people
from beazap.simulator.model import Simulation
from beazap.simulator.sinks import SOURCE_IP, ensure_bronze
from beazap.simulator.truth import GroundTruth
from beazap.simulator.world import HOUR_PROFILE
from core.identity import conversation_id
from core.logging import get_logger

if TYPE_CHECKING:
    from sqlalchemy import Engine

    from storage.lake import Lake

log = get_logger(__name__)

EVENTS_PER_CONVERSATION = 9.8  # measured average of the template mix below
_CROCKFORD = "0123456789ABCDEFGHJKMNPQRSTVWXYZ"
_PAIRS = [a + b for a in _CROCKFORD for b in _CROCKFORD]  # 10-bit chunks → 2 chars

_TAIL = ',"destination":"' + pl.DESTINATION + '","date_time":"%s","sender":"%s","server_url":"%s","apikey":null}'
T_IN = (
    '{"event":"messages.upsert","instance":"%s","data":{"key":{"remoteJid":"%s","fromMe":false,"id":"%s"},'
    '"pushName":"%s","status":"DELIVERY_ACK","message":%s,"messageType":"%s","messageTimestamp":%s,'
    '"instanceId":"%s","source":"android"}' + _TAIL
)
T_APP = (
    '{"event":"messages.upsert","instance":"%s","data":{"key":{"remoteJid":"%s","fromMe":true,"id":"%s"},'
    '"pushName":"Você","status":"SERVER_ACK","message":{"conversation":%s},"messageType":"conversation",'
    '"messageTimestamp":%d,"instanceId":"%s","source":"web"}' + _TAIL
)
T_API = (
    '{"event":"send.message","instance":"%s","data":{"key":{"remoteJid":"%s","fromMe":true,"id":"%s"},'
    '"pushName":"Você","status":"PENDING","message":{"conversation":%s},"messageType":"conversation",'
    '"messageTimestamp":%d,"instanceId":"%s","source":"unknown"}' + _TAIL
)
T_ACK = (
    '{"event":"messages.update","instance":"%s","data":{"keyId":"%s","remoteJid":"%s","fromMe":true,'
    '"participant":"%s","status":"%s","instanceId":"%s"}' + _TAIL
)
T_PRESENCE = (
    '{"event":"presence.update","instance":"%s","data":{"id":"%s","presences":{"%s":'
    '{"lastKnownPresence":"composing"}}}' + _TAIL
)
IN_TEXTS = [json.dumps({"conversation": t}, ensure_ascii=False) for t in pl.TEXTS_IN]
IN_MEDIA = [
    (
        '{"imageMessage":{"url":"https://mmg.whatsapp.net/v/t62.7118-24/a1.enc","mimetype":"image/jpeg",'
        '"fileLength":{"low":183402,"high":0,"unsigned":true},"height":1280,"width":960}}',
        "imageMessage",
    ),
    (
        '{"audioMessage":{"url":"https://mmg.whatsapp.net/v/t62.7117-24/b2.enc","mimetype":"audio/ogg; '
        'codecs=opus","seconds":14,"ptt":true,"fileLength":"40211"}}',
        "audioMessage",
    ),
    (
        '{"documentMessage":{"url":"https://mmg.whatsapp.net/v/t62.7119-24/c3.enc","mimetype":"application/pdf",'
        '"title":"comprovante.pdf","fileLength":120344,"fileName":"comprovante.pdf"}}',
        "documentMessage",
    ),
]
OUT_TEXTS = [json.dumps(t, ensure_ascii=False) for t in pl.TEXTS_OUT]


def _ulid(ms: int, seq: int) -> str:
    """A valid, sortable ULID: 48-bit milliseconds in Crockford base32, then the sequence number in
    16 decimal digits (a subset of the alphabet), so ids order by (ms, seq) and never collide."""
    p = _PAIRS
    return (
        _CROCKFORD[(ms >> 45) & 31]
        + p[(ms >> 35) & 1023]
        + p[(ms >> 25) & 1023]
        + p[(ms >> 15) & 1023]
        + p[(ms >> 5) & 1023]
        + _CROCKFORD[ms & 31]
        + f"{seq:016d}"
    )


_MS = [f"{i:03d}Z" for i in range(1000)]


_SOD = [f"{h:02d}:{m:02d}:{x:02d}." for h in range(24) for m in range(60) for x in range(60)]


class _Clock:
    """Envelope ``date_time`` strings (local wall clock + ``Z``): UTC offset cached per quarter hour, date
    strings per local day, time of day from a table."""

    def __init__(self, tz: ZoneInfo) -> None:
        self.tz = tz
        self.offsets: dict[int, int] = {}
        self.days: dict[int, str] = {}

    def __call__(self, t: float) -> str:
        whole = math.floor(t)
        us = round((t - whole) * 1e6)  # as datetime.fromtimestamp rounds
        if us >= 1_000_000:
            whole += 1
            us -= 1_000_000
        slot = whole // 900  # zone transitions happen on quarter hours
        off = self.offsets.get(slot)
        if off is None:
            delta = datetime.fromtimestamp(slot * 900, self.tz).utcoffset()
            off = int(delta.total_seconds()) if delta else 0
            self.offsets[slot] = off
        secs = whole + off
        day = secs // 86400
        ds = self.days.get(day)
        if ds is None:
            ds = (datetime(1970, 1, 1) + timedelta(days=day)).strftime("%Y-%m-%dT")
            self.days[day] = ds
        return ds + _SOD[secs - day * 86400] + _MS[us // 1000]


def _day_conversations(rng: random.Random, n: int, day_start: float) -> list[float]:
    hours = rng.choices(range(24), weights=HOUR_PROFILE, k=n)
    return sorted(day_start + h * 3600 + rng.random() * 3600 for h in hours)


@dataclass
class _Day:
    """One simulated day of bulk rows (all instances), ready to be written."""

    receipt: list[str] = field(default_factory=list)
    received: list[int] = field(default_factory=list)  # epoch microseconds
    instance: list[str] = field(default_factory=list)
    event: list[str] = field(default_factory=list)
    payload: list[str] = field(default_factory=list)
    ops: _Ops = field(default_factory=lambda: _Ops())
    counts: Counter[str] = field(default_factory=Counter)


def _generate_day(cfg: SimulationConfig, d: int, per_day: int, duplicate_rate: float) -> _Day:
    """Day ``d`` of every instance. Counters start at per-day offsets, so days are independent
    (any worker can build any day) and ids never collide."""
    instances, _teams, attendants = build_people(cfg)
    out = _Day()
    add_receipt, add_received = out.receipt.append, out.received.append
    add_instance, add_event, add_payload = out.instance.append, out.event.append, out.payload.append
    counts, ops = out.counts, out.ops
    contact_no = d * per_day * len(instances)
    id_counter = d * 100_000_000
    seq = d * 1_000_000_000
    day = cfg.start + timedelta(days=d)
    for inst in instances:
        rng = random.Random(f"beazap-bulk:{cfg.seed}:{inst.id}:{d}")
        tz = ZoneInfo(inst.timezone)
        clock = _Clock(tz)
        day_start = datetime(day.year, day.month, day.day, tzinfo=tz).timestamp()
        atts = [a for a in attendants if a.instance_id == inst.id]
        iid, uuid, sender, server = inst.id, inst.instance_uuid, inst.owner_jid, inst.server_url
        events: list[tuple[float, str, str]] = []
        add = events.append
        for t0 in _day_conversations(rng, per_day, day_start):
            contact_no += 1
            phone = f"55{11 + contact_no % 80:02d}9{60_000_000 + contact_no % 40_000_000:08d}"
            jid = phone + "@s.whatsapp.net"
            key = "+" + phone
            t = int(t0)
            name = pl.NAMES[contact_no % len(pl.NAMES)]
            assignee = atts[contact_no % len(atts)]
            opening = None
            cid = ""
            for turn in range(rng.choice((1, 1, 2, 2, 3))):
                if rng.random() < 0.3:
                    add((t - 4.2, "presence.update", T_PRESENCE % (iid, jid, jid, clock(t - 4.2), sender, server)))
                for _ in range(rng.choice((1, 1, 1, 2))):
                    id_counter += 1
                    mid = "3A%018X" % (id_counter * 7919 + 0x5A5A)
                    opening = opening or mid
                    if rng.random() < 0.12:
                        message, mtype = IN_MEDIA[id_counter % len(IN_MEDIA)]
                    else:
                        message, mtype = IN_TEXTS[id_counter % len(IN_TEXTS)], "conversation"
                    ts = f'"{t}"' if id_counter % 10 == 0 else str(t)
                    add((t + 0.3, "messages.upsert", T_IN % (iid, jid, mid, name, message, mtype, ts, uuid,
                                                             clock(t + 0.3), sender, server)))  # fmt: skip
                    t += rng.randint(3, 60)
                if turn == 0:
                    cid = conversation_id(iid, key, opening)  # type: ignore[arg-type]
                    ops.add(rng, iid, cid, key, "assign", "router", assignee.id, assignee.team_id, t0 + 5.5, "{}")
                t += int(min(rng.lognormvariate(5.0, 1.2), 6 * 3600)) + 1
                id_counter += 1
                mid = "3EB0%020X" % (id_counter * 7919 + 0xA5A5)
                text = OUT_TEXTS[id_counter % len(OUT_TEXTS)]
                if rng.random() < 0.7:
                    add((t + 0.2, "send.message", T_API % (iid, jid, mid, text, t, uuid, clock(t + 0.2), sender,
                                                           server)))  # fmt: skip
                    ops.add(rng, iid, cid, key, "message_sent", assignee.id, None, None, t - 0.3,
                            f'{{"automated":false,"message_id":"{mid}"}}')  # fmt: skip
                    acks: tuple[str, ...] = ("SERVER_ACK", "DELIVERY_ACK", "READ")
                else:
                    add((t + 0.2, "messages.upsert", T_APP % (iid, jid, mid, text, t, uuid, clock(t + 0.2),
                                                              sender, server)))  # fmt: skip
                    acks = ("DELIVERY_ACK", "READ")
                ta = float(t)
                for status in acks:
                    ta += rng.uniform(0.5, 40.0)
                    add((ta, "messages.update", T_ACK % (iid, mid, jid, jid, status, uuid, clock(ta), sender,
                                                          server)))  # fmt: skip
                t += int(rng.lognormvariate(4.5, 1.4)) + 2
            if rng.random() < 0.75:
                ops.add(rng, iid, cid, key, "resolve", assignee.id, assignee.id, assignee.team_id,
                        t + rng.randint(60, 3600) + 0.5, "{}")  # fmt: skip
        rand, uniform = rng.random, rng.uniform
        for t_ev, event, payload in events:
            r = rand()
            received = t_ev + 0.05 + (uniform(2, 600) if r < 0.03 else 0.0)
            add_received(int(received * 1_000_000))
            add_receipt(_ulid(int(received * 1000), seq))
            add_instance(iid)
            add_event(event)
            add_payload(payload)
            seq += 1
            if r > 1 - duplicate_rate:  # delivered twice (a retry 0.7 s later)
                received += 0.7
                add_received(int(received * 1_000_000))
                add_receipt(_ulid(int(received * 1000), seq))
                add_instance(iid)
                add_event(event)
                add_payload(payload)
                seq += 1
    counts.update(out.event)
    return out


def _write_day(lake: Lake, day: _Day) -> None:
    """Append one day (webhooks, then ops actions), retrying a commit that lost too many races."""
    from deltalake.exceptions import CommitFailedError

    for attempt in range(5):
        try:
            _flush(lake, day.receipt, day.received, day.instance, day.event, day.payload, _Ops())
            break
        except CommitFailedError:
            if attempt == 4:
                raise
            time.sleep(0.05 * (attempt + 1))
    for attempt in range(5):
        try:
            _flush(lake, [], [], [], [], [], day.ops)
            break
        except CommitFailedError:
            if attempt == 4:
                raise
            time.sleep(0.05 * (attempt + 1))


def _day_task(args: tuple[str, dict[str, str], SimulationConfig, int, int, float]) -> tuple[int, int, Counter[str]]:
    """Process-pool task: build and write one day; returns (rows, ops rows, events per type)."""
    from storage.lake import Lake

    root, options, cfg, d, per_day, duplicate_rate = args
    day = _generate_day(cfg, d, per_day, duplicate_rate)
    _write_day(Lake(root, options), day)
    return len(day.payload), len(day.ops), day.counts


def write_bronze_bulk(
    lake: Lake,
    cfg: SimulationConfig | None = None,
    *,
    target_events: int = 10_000_000,
    duplicate_rate: float = 0.03,
    workers: int = 1,
    progress: Any = None,
) -> dict[str, Any]:
    """Stream about ``target_events`` webhook rows for ``cfg.instances`` over ``cfg.days`` into bronze.

    The conversation rate is scaled so the target is reached over the configured days; one Delta
    commit per simulated day for the webhooks and one for its ops actions. With ``workers=1`` the next
    day is generated while the previous one is written (a writer thread); ``workers > 1`` builds and
    writes days in that many processes (concurrent appends to the same tables). The rows are the same
    either way (worker processes are spawned: call it under ``if __name__ == "__main__":`` in scripts).
    Returns counts, seconds and events/s.
    """
    cfg = cfg or SimulationConfig()
    ensure_bronze(lake)
    per_day = max(1, round(target_events / (EVENTS_PER_CONVERSATION * cfg.days * cfg.instances)))
    counts: Counter[str] = Counter()
    started = time.perf_counter()
    written = ops_written = 0
    if workers > 1:
        import multiprocessing

        ctx = multiprocessing.get_context("spawn")  # no fork of a process with threads
        tasks = [(lake.root, dict(lake.storage_options), cfg, d, per_day, duplicate_rate) for d in range(cfg.days)]
        with ProcessPoolExecutor(max_workers=workers, mp_context=ctx) as pool:
            for n, n_ops, day_counts in pool.map(_day_task, tasks):
                written += n
                ops_written += n_ops
                counts.update(day_counts)
                if progress is not None:
                    progress(n)
    else:
        writer = ThreadPoolExecutor(max_workers=1, thread_name_prefix="bulk-writer")
        pending: Future[None] | None = None
        for d in range(cfg.days):
            day = _generate_day(cfg, d, per_day, duplicate_rate)
            if pending is not None:
                pending.result()  # at most one day being written while the next one is generated
            pending = writer.submit(_write_day, lake, day)
            written += len(day.payload)
            ops_written += len(day.ops)
            counts.update(day.counts)
            if progress is not None:
                progress(len(day.payload))
            log.info("simulator.bulk_day", day=d, rows=len(day.payload), total=written)
        if pending is not None:
            pending.result()
        writer.shutdown()
    seconds = time.perf_counter() - started
    return {
        "webhook_events": written,
        "ops_events": ops_written,
        "commits": 2 * cfg.days,
        "seconds": seconds,
        "events_per_second": written / seconds if seconds else 0.0,
        "events_per_type": dict(counts.most_common()),
    }


class _Ops:
    """Columns of bronze/ops_events rows, appended without per-row dicts or datetimes."""

    def __init__(self) -> None:
        self.cols: dict[str, list[Any]] = {
            k: []
            for k in ("action_id", "instance", "conversation_id", "contact_key", "action", "actor_id",
                      "attendant_id", "team_id", "occurred_us", "details")
        }  # fmt: skip

    def __len__(self) -> int:
        return len(self.cols["action_id"])

    def add(
        self,
        rng: random.Random,
        instance: str,
        cid: str,
        key: str,
        action: str,
        actor: str,
        attendant: str | None,
        team: str | None,
        occurred: float,
        details: str,
    ) -> None:
        c = self.cols
        c["action_id"].append(f"act-{rng.getrandbits(80):020x}")
        c["instance"].append(instance)
        c["conversation_id"].append(cid)
        c["contact_key"].append(key)
        c["action"].append(action)
        c["actor_id"].append(actor)
        c["attendant_id"].append(attendant)
        c["team_id"].append(team)
        c["occurred_us"].append(int(occurred * 1_000_000))
        c["details"].append(details)

    def table(self) -> pa.Table:
        from bronze.schema import OPS_EVENTS_SCHEMA

        c = self.cols
        ts = pa.timestamp("us", tz="UTC")
        occurred = pa.array(c["occurred_us"], pa.int64())
        columns = {k: v for k, v in c.items() if k != "occurred_us"}
        columns["occurred_at"] = occurred.cast(ts)
        columns["extracted_at"] = pa.compute.add(occurred, 2_000_000).cast(ts)
        columns["occurred_date"] = occurred.cast(ts).cast(pa.date32())
        return pa.table({name: columns[name] for name in OPS_EVENTS_SCHEMA.names}, schema=OPS_EVENTS_SCHEMA)


def _flush(
    lake: Lake,
    receipts: list[str],
    received: list[int],
    instance: list[str],
    event: list[str],
    payload: list[str],
    ops: _Ops,
) -> None:
    if payload:
        _append_day(lake, receipts, received, instance, event, payload)
    if len(ops):
        from bronze.schema import OPS_EVENTS, OPS_EVENTS_PARTITIONS

        lake.write(OPS_EVENTS, ops.table(), mode="append", partition_by=OPS_EVENTS_PARTITIONS)


def _append_day(
    lake: Lake,
    receipts: list[str],
    received: list[int],
    instance: list[str],
    event: list[str],
    payload: list[str],
) -> None:
    from beazap.simulator.sinks import append_webhooks
    from bronze.schema import WEBHOOK_EVENTS_SCHEMA

    sha = hashlib.sha256
    encoded = [p.encode() for p in payload]
    hashes = [sha(b).hexdigest() for b in encoded]
    offsets = pa.array(list(itertools.accumulate(map(len, encoded), initial=0)), type=pa.int32())
    payload_array = pa.StringArray.from_buffers(len(encoded), offsets.buffers()[1], pa.py_buffer(b"".join(encoded)))
    rec = pa.array(received, type=pa.int64()).cast(pa.timestamp("us", tz="UTC"))
    table = pa.table(
        {
            "receipt_id": receipts,
            "received_at": rec,
            "received_date": rec.cast(pa.date32()),
            "instance": instance,
            "event": event,
            "source_ip": pa.repeat(SOURCE_IP, len(payload)),
            "payload": payload_array,
            "payload_hash": hashes,
        },
        schema=WEBHOOK_EVENTS_SCHEMA,
    )
    append_webhooks(lake, table)


def register_bulk_instances(engine: Engine, cfg: SimulationConfig) -> dict[str, int]:
    """Register the bulk run's instances, teams and attendants (same people as :func:`simulate`)."""
    from beazap.simulator.sinks import register_instances

    instances, teams, attendants = build_people(cfg)
    sim = Simulation(cfg, instances, teams, attendants, [], [], GroundTruth())
    return register_instances(engine, sim)
