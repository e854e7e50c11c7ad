"""Live projector: keeps the operational store's conversations and messages current from bronze.

It tails ``bronze/webhook_events`` by Delta version through the change data feed and applies each
batch of rows in ONE database transaction that also moves its cursor (``projector_cursors``), so a
crash or a database outage can neither lose nor double an event: the next run starts from the
committed cursor. It also ingests ``bronze/ops_events`` (actions written to the lake by the
simulator or another store; idempotent by ``action_id``) and applies pending actions to the
conversation that was open for the contact when they happened (``docs/metrics.md``).

``run_once(lake, engine)`` applies everything available and returns how many bronze rows and
actions it applied; ``beazap worker`` calls it in a loop (:func:`run_forever`).
"""

from __future__ import annotations

import bisect
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

import orjson
import pyarrow as pa
import pyarrow.compute as pc
from deltalake.exceptions import DeltaError
from sqlalchemy import Connection, Engine, and_, bindparam, exists, func, insert, not_, or_, select, update
from sqlalchemy.exc import DBAPIError, OperationalError
from tenacity import retry, retry_if_exception_type, stop_never, wait_exponential

from bronze.schema import OPS_EVENTS, OPS_EVENTS_SCHEMA, WEBHOOK_EVENTS, WEBHOOK_EVENTS_SCHEMA
from core.logging import get_logger
from core.settings import Settings, get_settings
from core.utc import as_utc, utc_row
from live import parse as pz
from live import sessions as ss
from live.store_sql import (
    chunks,
    insert_ignore,
    live_as_of,
    read_cursor,
    upsert,
    write_cursor,
)
from storage import log_tail
from storage.lake import Lake
from storage.leases import Lease, LeaseLostError
from storage.tables import (
    actions,
    contact_aliases,
    conversations,
    instance_watermarks,
    messages,
    pending_message_events,
    projector_cursors,
)

log = get_logger(__name__)

WEBHOOK_CURSOR = "webhook_events"
OPS_CURSOR = "ops_events"
MAX_VERSIONS_PER_READ = 500


class VersionConflictError(Exception):
    """A conversation changed under the projector (an API action); the batch is retried."""


@dataclass
class _Batch:
    """In-memory state of one transaction's worth of bronze rows."""

    convs: dict[str, ss.Conversation] = field(default_factory=dict)
    loaded_version: dict[str, int] = field(default_factory=dict)  # id -> version as loaded
    snapshots: dict[str, tuple[Any, ...]] = field(default_factory=dict)
    new_ids: list[str] = field(default_factory=list)
    latest: dict[tuple[str, str], str] = field(default_factory=dict)  # (instance, contact) -> id
    applied_actions: list[dict[str, Any]] = field(default_factory=list)
    new_aliases: dict[tuple[str, str], str] = field(default_factory=dict)  # (instance, lid) -> phone
    replay: set[tuple[str, str]] = field(default_factory=set)  # (instance, contact) to re-sessionize
    sent_marks: list[tuple[str, str]] = field(default_factory=list)  # message_sent actions to mark applied


_SNAP_COLS = ss.MESSAGE_COLUMNS + ss.ACTION_COLUMNS + ("is_reopen",)


def _snapshot(conv: ss.Conversation) -> tuple[Any, ...]:
    return tuple(conv.get(c) for c in _SNAP_COLS)


class Projector:
    """Applies bronze to the operational store.

    One projector per database at a time: with a ``lease`` (``beazap worker`` always passes one)
    every write transaction renews it first and rolls back with :class:`LeaseLostError` if another
    process took it over, so two workers never apply the same rows.
    """

    def __init__(
        self, lake: Lake, engine: Engine, settings: Settings | None = None, *, lease: Lease | None = None
    ) -> None:
        self.lake = lake
        self.engine = engine
        self.lease = lease
        self.settings = settings or get_settings()
        self.policy = ss.Policy.from_settings(self.settings)
        self.batch_rows = max(1, self.settings.projector_batch_rows)
        self.on_new_conversations: Callable[[list[str]], None] | None = None
        self._last_sweep = 0.0

    @contextmanager
    def _begin(self) -> Iterator[Connection]:
        """A write transaction that first renews (fences) the projector lease, when there is one."""
        with self.engine.begin() as conn:
            if self.lease is not None:
                self.lease.fence(conn)
            yield conn

    # ------------------------------------------------------------------ entry points
    def run_once(self, *, now: datetime | None = None) -> int:
        applied = self._ingest_ops_events()
        applied += self._apply_webhooks()
        if applied:
            applied += self._drain_actions()
        self.sweep(now=now)
        return applied

    # ------------------------------------------------------------------ bronze reading
    def _load(self, table: str, start: int, end: int, columns: list[str]) -> pa.Table:
        # by commit path: no listing of the log, which races concurrent appends
        data = _plain_strings(log_tail.inserted_rows(self.lake, table, start, end, _SCHEMAS[table]))
        data = data.select([*columns, "_commit_version"])
        order = pc.sort_indices(data, sort_keys=[("_commit_version", "ascending")])  # stable
        return data.take(order)

    def _pending_window(self, table: str, cursor_name: str) -> tuple[int, int, int] | None:
        """(start version, end version, rows of start already applied) or None when caught up (or the
        table does not exist yet)."""
        with self.engine.connect() as conn:
            version, offset = read_cursor(conn, cursor_name)
        end = log_tail.latest_version(self.lake, table, version, MAX_VERSIONS_PER_READ)
        if version >= end:
            return None
        return version + 1, end, offset

    # ------------------------------------------------------------------ ops events (actions)
    def _ingest_ops_events(self) -> int:
        total = 0
        while (window := self._pending_window(OPS_EVENTS, OPS_CURSOR)) is not None:
            start, end, _offset = window
            data = self._load(
                OPS_EVENTS,
                start,
                end,
                [
                    "action_id",
                    "instance",
                    "conversation_id",
                    "contact_key",
                    "action",
                    "actor_id",
                    "attendant_id",
                    "team_id",
                    "occurred_at",
                    "details",
                ],
            )
            rows = [self._action_row(r) for r in data.drop_columns(["_commit_version"]).to_pylist()]
            with self._begin() as conn:
                for part in chunks(rows, 1000):
                    conn.execute(insert_ignore(conn, actions), part)
                # Actions keyed by a LID whose phone is known follow the phone.
                alias = (
                    select(contact_aliases.c.phone)
                    .where(
                        contact_aliases.c.instance_id == actions.c.instance_id,
                        contact_aliases.c.lid == actions.c.contact_key,
                    )
                    .scalar_subquery()
                )
                conn.execute(
                    update(actions)
                    .where(actions.c.conversation_id.is_(None), actions.c.contact_key.like("%@lid"), alias.is_not(None))
                    .values(contact_key=alias)
                )
                write_cursor(conn, OPS_CURSOR, end, 0)
            total += len(rows)
        return total

    @staticmethod
    def _action_row(r: dict[str, Any]) -> dict[str, Any]:
        details: Any = None
        message_id = None
        if r.get("details"):
            try:
                details = orjson.loads(r["details"])
            except orjson.JSONDecodeError:
                details = {"raw": r["details"]}
            if isinstance(details, dict) and isinstance(details.get("message_id"), str):
                message_id = details["message_id"]
        return {
            "id": r["action_id"],
            "instance_id": r["instance"],
            "conversation_id": None,  # set when applied here (the lake's id is informational)
            "contact_key": r.get("contact_key"),
            "action": r["action"],
            "actor_id": r.get("actor_id"),
            "attendant_id": r.get("attendant_id"),
            "team_id": r.get("team_id"),
            "message_id": message_id,
            "occurred_at": as_utc(r["occurred_at"]),
            "details": details,
            "source": "lake",
        }

    # ------------------------------------------------------------------ webhook events
    def _apply_webhooks(self) -> int:
        total = 0
        while (window := self._pending_window(WEBHOOK_EVENTS, WEBHOOK_CURSOR)) is not None:
            start, end, offset = window
            data = self._load(WEBHOOK_EVENTS, start, end, ["instance", "event", "payload", "received_at"])
            versions = data["_commit_version"].to_pylist()
            pos = offset
            n = len(data)
            if pos >= n:
                with self._begin() as conn:
                    write_cursor(conn, WEBHOOK_CURSOR, end, 0)
                continue
            while pos < n:
                stop = min(pos + self.batch_rows, n)
                if stop == n:
                    cursor = (end, 0)
                else:
                    next_version = int(versions[stop])
                    first = bisect.bisect_left(versions, next_version)
                    cursor = (next_version - 1, stop - first)
                chunk = data.slice(pos, stop - pos)
                self._apply_chunk_with_retry(chunk, cursor)
                total += stop - pos
                pos = stop
        return total

    def _apply_chunk_with_retry(self, chunk: pa.Table, cursor: tuple[int, int]) -> None:
        instances = chunk["instance"].to_pylist()
        events = chunk["event"].to_pylist()
        payloads = chunk["payload"].to_pylist()
        facts: list[pz.Fact] = []
        received: dict[str, datetime] = {}  # what bronze holds moves the as-of, like silver's (sweep)
        for inst, ev, payload, at in zip(instances, events, payloads, chunk["received_at"].to_pylist(), strict=True):
            if ev in pz.RELEVANT_EVENTS:
                facts.extend(pz.parse(inst, ev, payload))
            if at is not None and (inst not in received or at > received[inst]):
                received[inst] = at
        facts += [pz.Seen(inst, at) for inst, at in received.items()]
        for attempt in range(5):
            try:
                with self._begin() as conn:
                    new_ids = self._apply_facts(conn, facts)
                    write_cursor(conn, WEBHOOK_CURSOR, *cursor)
                break
            except VersionConflictError:
                log.info("projector.retry_conflict", attempt=attempt)
        else:
            raise ConversationsKeptChangingError("conversations kept changing under the batch; giving up this run")
        if new_ids and self.on_new_conversations is not None:
            try:
                self.on_new_conversations(new_ids)
            except Exception as exc:  # routing must never stop the projector
                log.warning("projector.routing_failed", error=type(exc).__name__)

    # ------------------------------------------------------------------ the core of a batch
    def _apply_facts(self, conn: Connection, facts: list[pz.Fact]) -> list[str]:
        msgs: dict[tuple[str, str], pz.Message] = {}
        updates: list[pz.MessageUpdate] = []
        learned: list[pz.Alias] = []
        marks: dict[str, datetime] = {}
        for fact in facts:
            if isinstance(fact, pz.Message):
                key = (fact.instance_id, fact.message_id)
                seen = msgs.get(key)
                if seen is None:
                    msgs[key] = fact
                else:
                    seen.status = pz.better_status(seen.status, fact.status)
                if fact.phone and fact.lid:
                    learned.append(pz.Alias(fact.instance_id, fact.lid, fact.phone))
            elif isinstance(fact, pz.Alias):
                learned.append(fact)
            elif isinstance(fact, pz.Seen):
                marks[fact.instance_id] = max(marks.get(fact.instance_id, fact.timestamp), fact.timestamp)
            else:
                updates.append(fact)
        for m in msgs.values():
            marks[m.instance_id] = max(marks.get(m.instance_id, m.timestamp), m.timestamp)
        if marks:
            self._advance_watermarks(conn, marks)
        if not msgs and not updates and not learned:
            return []
        batch = _Batch()
        # LID → phone: known aliases re-key LID-only messages; new ones move the LID's history.
        lids = {(m.instance_id, m.lid) for m in msgs.values() if m.lid} | {(a.instance_id, a.lid) for a in learned}
        aliases = self._load_aliases(conn, lids)
        new_aliases: dict[tuple[str, str], str] = {}
        for a in learned:
            key = (a.instance_id, a.lid)
            if key not in aliases and (key not in new_aliases or a.phone < new_aliases[key]):
                new_aliases[key] = a.phone
        aliases.update(new_aliases)
        for m in msgs.values():
            if not m.phone and m.lid and (m.instance_id, m.lid) in aliases:
                m.contact_key = aliases[(m.instance_id, m.lid)]
        if new_aliases:
            batch.new_aliases = new_aliases
            for inst, lid in self._keys_with_conversations(conn, set(new_aliases)):
                batch.replay.add((inst, new_aliases[(inst, lid)]))

        # Message facts carry their timestamp: bound the lookup so PostgreSQL prunes partitions.
        bounds: dict[str, tuple[datetime, datetime]] = {}
        for m in msgs.values():
            lo, hi = bounds.get(m.instance_id, (m.timestamp, m.timestamp))
            bounds[m.instance_id] = (min(lo, m.timestamp), max(hi, m.timestamp))
        existing = self._existing_messages(conn, set(msgs), bounds)
        update_targets = {(u.instance_id, u.message_id) for u in updates} - set(msgs)
        if update_targets:
            existing.update(self._existing_messages(conn, update_targets, None))
        flags = self._flags(conn)
        new_msgs = sorted((m for k, m in msgs.items() if k not in existing), key=_message_order)

        # Duplicates of stored messages only move their status.
        for key, m in msgs.items():
            if key in existing and m.status:
                updates.append(pz.MessageUpdate(m.instance_id, m.message_id, status=m.status))

        new_keys = {(m.instance_id, m.message_id) for m in new_msgs}
        unknown = {(u.instance_id, u.message_id) for u in updates} - set(existing) - new_keys
        pending = self._pending(conn, new_keys | unknown) if flags["pending"] else {}
        outbound = {(m.instance_id, m.message_id) for m in new_msgs if m.direction == "outbound"}
        sent = self._message_sent(conn, outbound) if flags["sent"] and outbound else {}

        contacts = {(m.instance_id, m.contact_key) for m in new_msgs}
        self._load_latest(conn, batch, contacts)
        max_ts = max((m.timestamp for m in new_msgs), default=None)
        acts = self._unapplied_actions(conn, contacts, max_ts) if contacts and flags["actions"] else []
        batch.sent_marks = sorted(sent)

        timeline: list[tuple[tuple[Any, ...], Any]] = [(_message_order(m), m) for m in new_msgs]
        timeline += [((a["occurred_at"], 2, a["id"]), a) for a in acts]
        timeline.sort(key=lambda item: item[0])

        message_rows: dict[tuple[str, str], dict[str, Any]] = {}
        for _order, item in timeline:
            if isinstance(item, pz.Message):
                message_rows[(item.instance_id, item.message_id)] = self._place_message(
                    conn, batch, item, sent.get((item.instance_id, item.message_id))
                )
            else:
                self._place_action(conn, batch, item)

        # Pending events that were waiting for these messages.
        for key, row in message_rows.items():
            p = pending.get(key)
            if p:
                _merge_update(row, pz.MessageUpdate(key[0], key[1], p["status"], p["text"], p["edited"], p["revoked"]))
        existing_changes: dict[tuple[str, str], dict[str, Any]] = {}
        pending_changes: dict[tuple[str, str], dict[str, Any]] = {}
        for u in updates:
            key = (u.instance_id, u.message_id)
            if key in message_rows:
                _merge_update(message_rows[key], u)
            elif key in existing:
                row = existing_changes.setdefault(key, dict(existing[key]))
                _merge_update(row, u)
            else:
                row = pending_changes.setdefault(
                    key,
                    pending.get(key)
                    or {
                        "instance_id": key[0],
                        "message_id": key[1],
                        "status": None,
                        "text": None,
                        "edited": False,
                        "revoked": False,
                    },
                )
                _merge_update(row, u)

        self._write(conn, batch, message_rows, existing, existing_changes, pending, pending_changes)
        for instance_id, contact in sorted(batch.replay):
            self.replay_contact(conn, instance_id, contact)
        return [cid for cid in batch.new_ids if batch.convs[cid]["origin"] == "inbound"]

    def _place_message(
        self, conn: Connection, batch: _Batch, m: pz.Message, sent: tuple[bool, str | None] | None
    ) -> dict[str, Any]:
        key = (m.instance_id, m.contact_key)
        latest_id = batch.latest.get(key)
        latest = batch.convs.get(latest_id) if latest_id else None
        target: ss.Conversation | None = None
        if latest is not None and m.timestamp < latest["opened_at"]:
            # Older than the contact's latest conversation: place it now, then re-sessionize the contact.
            target = self._conversation_at(conn, batch, m.instance_id, m.contact_key, m.timestamp) or latest
            batch.replay.add(key)
        elif ss.place(latest, m, self.policy) == "attach":
            target = latest
        if target is None:
            target = ss.open_conversation(m, latest, self.policy)
            if target["id"] in batch.convs:  # the same opening message twice: keep the first
                target = batch.convs[target["id"]]
            else:
                batch.convs[target["id"]] = target
                batch.new_ids.append(target["id"])
                batch.latest[key] = target["id"]
        automated, sender = sent if sent else (False, None)
        ss.add_message(target, m, automated=automated, sender_attendant_id=sender)
        return {
            "instance_id": m.instance_id,
            "message_id": m.message_id,
            "timestamp": m.timestamp,
            "conversation_id": target["id"],
            "contact_key": m.contact_key,
            "chat_jid": m.chat_jid,
            "direction": m.direction,
            "kind": m.kind,
            "text": m.text,
            "status": m.status,
            "edited": False,
            "revoked": False,
            "automated": automated,
            "sender_attendant_id": sender,
        }

    def _place_action(self, conn: Connection, batch: _Batch, action: dict[str, Any]) -> None:
        key = (action["instance_id"], action["contact_key"])
        latest_id = batch.latest.get(key)
        conv = batch.convs.get(latest_id) if latest_id else None
        if conv is None or conv["opened_at"] > action["occurred_at"]:
            conv = self._conversation_at(conn, batch, key[0], key[1], action["occurred_at"])
        if not ss.accepts_action(conv, action["action"], action["occurred_at"], self.policy):
            return
        assert conv is not None
        ss.apply_action(conv, action)
        batch.applied_actions.append({"b_id": action["id"], "conversation_id": conv["id"]})

    # ------------------------------------------------------------------ loading
    def _flags(self, conn: Connection) -> dict[str, bool]:
        """Cheap existence checks that let a batch skip lookups that cannot find anything."""
        a, p = actions, pending_message_events
        row = conn.execute(
            select(
                exists().where(p.c.instance_id.is_not(None)),
                exists().where(a.c.conversation_id.is_(None), a.c.action == "message_sent"),
                exists().where(a.c.conversation_id.is_(None), a.c.action.in_(sorted(ss.CONVERSATION_ACTIONS))),
            )
        ).one()
        return {"pending": bool(row[0]), "sent": bool(row[1]), "actions": bool(row[2])}

    def _existing_messages(
        self,
        conn: Connection,
        keys: set[tuple[str, str]],
        bounds: dict[str, tuple[datetime, datetime]] | None,
    ) -> dict[tuple[str, str], dict]:
        out: dict[tuple[str, str], dict] = {}
        by_instance: dict[str, list[str]] = {}
        for inst, mid in keys:
            by_instance.setdefault(inst, []).append(mid)
        cols = [
            messages.c[c] for c in ("instance_id", "message_id", "timestamp", "status", "text", "edited", "revoked")
        ]
        for inst, ids in by_instance.items():
            for part in chunks(ids):
                q = select(*cols).where(messages.c.instance_id == inst, messages.c.message_id.in_(part))
                if bounds and inst in bounds:
                    q = q.where(messages.c.timestamp.between(*bounds[inst]))
                for row in conn.execute(q):
                    out[(row.instance_id, row.message_id)] = utc_row(row)
        return out

    def _pending(self, conn: Connection, keys: set[tuple[str, str]]) -> dict[tuple[str, str], dict]:
        out: dict[tuple[str, str], dict] = {}
        by_instance: dict[str, list[str]] = {}
        for inst, mid in keys:
            by_instance.setdefault(inst, []).append(mid)
        t = pending_message_events
        for inst, ids in by_instance.items():
            for part in chunks(ids):
                for row in conn.execute(select(t).where(t.c.instance_id == inst, t.c.message_id.in_(part))):
                    out[(row.instance_id, row.message_id)] = utc_row(row)
        return out

    def _message_sent(
        self, conn: Connection, keys: set[tuple[str, str]]
    ) -> dict[tuple[str, str], tuple[bool, str | None]]:
        out: dict[tuple[str, str], tuple[bool, str | None]] = {}
        by_instance: dict[str, list[str]] = {}
        for inst, mid in keys:
            by_instance.setdefault(inst, []).append(mid)
        a = actions
        for inst, ids in by_instance.items():
            for part in chunks(ids):
                rows = conn.execute(
                    select(a.c.message_id, a.c.actor_id, a.c.attendant_id, a.c.details).where(
                        a.c.instance_id == inst, a.c.message_id.in_(part), a.c.action == "message_sent"
                    )
                )
                for row in rows:
                    automated = bool((row.details or {}).get("automated")) if isinstance(row.details, dict) else False
                    sender = None if automated else (row.attendant_id or row.actor_id)
                    out[(inst, row.message_id)] = (automated, sender)
        return out

    def _load_latest(self, conn: Connection, batch: _Batch, contacts: set[tuple[str, str]]) -> None:
        c = conversations
        c2 = conversations.alias("c2")
        newest = (
            select(func.max(c2.c.opened_at))
            .where(c2.c.instance_id == c.c.instance_id, c2.c.contact_key == c.c.contact_key)
            .scalar_subquery()
        )
        by_instance: dict[str, list[str]] = {}
        for inst, ck in contacts:
            by_instance.setdefault(inst, []).append(ck)
        for inst, keys in by_instance.items():
            for part in chunks(keys):
                rows = conn.execute(
                    select(c).where(c.c.instance_id == inst, c.c.contact_key.in_(part), c.c.opened_at == newest)
                )
                for row in rows:
                    conv = self._remember(batch, utc_row(row))
                    batch.latest[(inst, conv["contact_key"])] = conv["id"]

    def _remember(self, batch: _Batch, conv: ss.Conversation) -> ss.Conversation:
        conv.pop("updated_at", None)
        if conv["id"] in batch.convs:
            return batch.convs[conv["id"]]
        batch.convs[conv["id"]] = conv
        batch.loaded_version[conv["id"]] = conv["version"]
        batch.snapshots[conv["id"]] = _snapshot(conv)
        return conv

    def _conversation_at(
        self, conn: Connection, batch: _Batch, instance: str, contact: str | None, at: datetime
    ) -> ss.Conversation | None:
        """The contact's conversation with the latest ``opened_at`` not after ``at``."""
        if contact is None:
            return None
        best: ss.Conversation | None = None
        for conv in batch.convs.values():
            same = conv["instance_id"] == instance and conv["contact_key"] == contact
            if same and conv["opened_at"] <= at and (best is None or conv["opened_at"] > best["opened_at"]):
                best = conv
        c = conversations
        row = conn.execute(
            select(c)
            .where(c.c.instance_id == instance, c.c.contact_key == contact, c.c.opened_at <= at)
            .order_by(c.c.opened_at.desc())
            .limit(1)
        ).first()
        if row is not None:
            found = self._remember(batch, utc_row(row))
            if best is None or found["opened_at"] > best["opened_at"]:
                best = found
        return best

    def _unapplied_actions(
        self, conn: Connection, contacts: set[tuple[str, str]], max_ts: datetime | None
    ) -> list[dict[str, Any]]:
        a = actions
        out: list[dict[str, Any]] = []
        by_instance: dict[str, list[str]] = {}
        for inst, ck in contacts:
            by_instance.setdefault(inst, []).append(ck)
        for inst, keys in by_instance.items():
            for part in chunks(keys):
                q = select(a).where(
                    a.c.instance_id == inst,
                    a.c.contact_key.in_(part),
                    a.c.conversation_id.is_(None),
                    a.c.action.in_(sorted(ss.CONVERSATION_ACTIONS)),
                )
                if max_ts is not None:
                    q = q.where(a.c.occurred_at <= max_ts)
                out.extend(utc_row(r) for r in conn.execute(q))
        return out

    def _advance_watermarks(self, conn: Connection, marks: dict[str, datetime]) -> None:
        w = instance_watermarks
        known = {
            r.instance_id: as_utc(r.watermark)
            for r in conn.execute(select(w).where(w.c.instance_id.in_(sorted(marks))))
        }
        rows = [{"instance_id": i, "watermark": t} for i, t in marks.items() if known.get(i) is None or t > known[i]]
        if rows:
            conn.execute(upsert(conn, w, ["instance_id"], ["watermark"]), rows)

    def _load_aliases(self, conn: Connection, lids: set[tuple[str, str]]) -> dict[tuple[str, str], str]:
        out: dict[tuple[str, str], str] = {}
        by_instance: dict[str, list[str]] = {}
        for inst, lid in lids:
            by_instance.setdefault(inst, []).append(lid)
        t = contact_aliases
        for inst, keys in by_instance.items():
            for part in chunks(keys):
                for row in conn.execute(select(t.c.lid, t.c.phone).where(t.c.instance_id == inst, t.c.lid.in_(part))):
                    out[(inst, row.lid)] = row.phone
        return out

    def _keys_with_conversations(self, conn: Connection, keys: set[tuple[str, str]]) -> set[tuple[str, str]]:
        by_instance: dict[str, list[str]] = {}
        for inst, key in keys:
            by_instance.setdefault(inst, []).append(key)
        c = conversations
        found: set[tuple[str, str]] = set()
        for inst, ks in by_instance.items():
            for part in chunks(ks):
                rows = conn.execute(
                    select(c.c.contact_key).where(c.c.instance_id == inst, c.c.contact_key.in_(part)).distinct()
                )
                found |= {(inst, r.contact_key) for r in rows}
        return found

    def replay_contact(self, conn: Connection, instance_id: str, contact: str) -> None:
        """Re-sessionize one contact from its stored messages and actions (all its LIDs folded into the
        phone): used when a LID's phone is learned or a message arrives older than the contact's
        latest conversation, so the live store ends as silver would."""
        c, m, a = conversations, messages, actions
        keys = [contact]
        if not contact.endswith("@lid"):
            keys += list(
                conn.execute(
                    select(contact_aliases.c.lid).where(
                        contact_aliases.c.instance_id == instance_id, contact_aliases.c.phone == contact
                    )
                ).scalars()
            )
        old = [
            utc_row(r) for r in conn.execute(select(c).where(c.c.instance_id == instance_id, c.c.contact_key.in_(keys)))
        ]
        if not old:
            return
        old_ids = [o["id"] for o in old]
        rows = [
            utc_row(r)
            for r in conn.execute(select(m).where(m.c.instance_id == instance_id, m.c.conversation_id.in_(old_ids)))
        ]
        acts = [
            utc_row(r)
            for r in conn.execute(
                select(a).where(
                    a.c.instance_id == instance_id,
                    a.c.contact_key.in_(keys),
                    a.c.action.in_(sorted(ss.CONVERSATION_ACTIONS)),
                )
            )
        ]
        items: list[tuple[tuple[Any, ...], Any]] = []
        for r in rows:
            msg = pz.Message(
                instance_id,
                r["message_id"],
                r["timestamp"],
                r["direction"],
                r["kind"],
                r["text"],
                r["chat_jid"] or "",
                contact,
                r["status"],
            )
            items.append((_message_order(msg), (msg, r)))
        items += [((act["occurred_at"], 2, act["id"]), act) for act in acts]
        items.sort(key=lambda item: item[0])
        convs: dict[str, ss.Conversation] = {}
        latest: ss.Conversation | None = None
        msg_conv: list[dict[str, Any]] = []
        applied: dict[str, str | None] = {act["id"]: None for act in acts}
        for _order, item in items:
            if isinstance(item, tuple):
                msg, r = item
                if ss.place(latest, msg, self.policy) == "new":
                    latest = ss.open_conversation(msg, latest, self.policy)
                    convs[latest["id"]] = latest
                assert latest is not None
                ss.add_message(
                    latest, msg, automated=bool(r["automated"]), sender_attendant_id=r["sender_attendant_id"]
                )
                msg_conv.append({"b_m": r["message_id"], "b_ts": r["timestamp"], "v_c": latest["id"]})
            elif ss.accepts_action(latest, item["action"], item["occurred_at"], self.policy):
                assert latest is not None
                ss.apply_action(latest, item)
                applied[item["id"]] = latest["id"]
        now = datetime.now(UTC)
        conn.execute(c.delete().where(c.c.id.in_(old_ids)))
        if convs:
            conn.execute(insert(c), [{**conv, "updated_at": now} for conv in convs.values()])
        if msg_conv:
            conn.execute(
                update(m)
                .where(
                    m.c.instance_id == instance_id,
                    m.c.message_id == bindparam("b_m"),
                    m.c.timestamp == bindparam("b_ts"),
                )
                .values(conversation_id=bindparam("v_c"), contact_key=contact),
                msg_conv,
            )
            by_message = {x["b_m"]: x["v_c"] for x in msg_conv}
            conn.execute(
                update(a)
                .where(
                    a.c.instance_id == instance_id,
                    a.c.message_id == bindparam("b_m"),
                    a.c.action == "message_sent",
                    a.c.conversation_id.is_not(None),
                )
                .values(conversation_id=bindparam("v_c")),
                [{"b_m": k, "v_c": v} for k, v in by_message.items()],
            )
        if applied:
            conn.execute(
                update(a)
                .where(a.c.id == bindparam("b_id"))
                .values(conversation_id=bindparam("v_c"), contact_key=contact),
                [{"b_id": k, "v_c": v} for k, v in applied.items()],
            )

    # ------------------------------------------------------------------ writing
    def _write(
        self,
        conn: Connection,
        batch: _Batch,
        message_rows: dict[tuple[str, str], dict[str, Any]],
        existing: dict[tuple[str, str], dict],
        existing_changes: dict[tuple[str, str], dict[str, Any]],
        pending: dict[tuple[str, str], dict],
        pending_changes: dict[tuple[str, str], dict[str, Any]],
    ) -> None:
        now = datetime.now(UTC)
        if batch.new_aliases:
            conn.execute(
                insert_ignore(conn, contact_aliases),
                [
                    {"instance_id": i, "lid": lid, "phone": phone, "learned_at": now}
                    for (i, lid), phone in batch.new_aliases.items()
                ],
            )
            conn.execute(
                update(actions)
                .where(actions.c.instance_id == bindparam("b_i"), actions.c.contact_key == bindparam("b_lid"))
                .values(contact_key=bindparam("v_phone")),
                [{"b_i": i, "b_lid": lid, "v_phone": phone} for (i, lid), phone in batch.new_aliases.items()],
            )
        new_set = set(batch.new_ids)
        if batch.new_ids:
            _bulk_insert(conn, conversations, [{**batch.convs[i], "updated_at": now} for i in batch.new_ids])
        changed = [
            conv
            for cid, conv in batch.convs.items()
            if cid not in new_set and _snapshot(conv) != batch.snapshots.get(cid)
        ]
        if changed:
            cols = (*ss.MESSAGE_COLUMNS, *ss.ACTION_COLUMNS)
            stmt = (
                update(conversations)
                .where(conversations.c.id == bindparam("b_id"), conversations.c.version == bindparam("b_version"))
                .values({c: bindparam(f"v_{c}") for c in cols} | {"updated_at": now})
            )
            params = [
                {"b_id": conv["id"], "b_version": batch.loaded_version[conv["id"]]} | {f"v_{c}": conv[c] for c in cols}
                for conv in changed
            ]
            result = conn.execute(stmt, params)
            if result.rowcount != len(params):
                raise VersionConflictError
        if message_rows:
            # New by construction (looked up above; one projector per database), so COPY is safe.
            _bulk_insert(conn, messages, list(message_rows.values()))
        if existing_changes:
            stmt = (
                update(messages)
                .where(
                    messages.c.instance_id == bindparam("b_instance"),
                    messages.c.message_id == bindparam("b_message"),
                    messages.c.timestamp == bindparam("b_ts"),
                )
                .values(
                    status=bindparam("v_status"),
                    text=bindparam("v_text"),
                    edited=bindparam("v_edited"),
                    revoked=bindparam("v_revoked"),
                )
            )
            params = [
                {
                    "b_instance": k[0],
                    "b_message": k[1],
                    "b_ts": row["timestamp"],
                    "v_status": row["status"],
                    "v_text": row["text"],
                    "v_edited": row["edited"],
                    "v_revoked": row["revoked"],
                }
                for k, row in existing_changes.items()
                if any(row[c] != existing[k][c] for c in ("status", "text", "edited", "revoked"))
            ]
            if params:
                conn.execute(stmt, params)
        consumed = [k for k in message_rows if k in pending]
        if consumed:
            t = pending_message_events
            conn.execute(
                t.delete().where(t.c.instance_id == bindparam("b_i"), t.c.message_id == bindparam("b_m")),
                [{"b_i": i, "b_m": m} for i, m in consumed],
            )
        if pending_changes:
            cols = ["status", "text", "edited", "revoked"]
            conn.execute(
                upsert(conn, pending_message_events, ["instance_id", "message_id"], cols),
                [{k: row[k] for k in ("instance_id", "message_id", *cols)} for row in pending_changes.values()],
            )
        if batch.applied_actions:
            conn.execute(
                update(actions)
                .where(actions.c.id == bindparam("b_id"))
                .values(conversation_id=bindparam("conversation_id")),
                batch.applied_actions,
            )
        # message_sent actions are applied with their message: record which conversation they touched.
        sent_keys = [
            (i, m, message_rows[(i, m)]["conversation_id"]) for i, m in batch.sent_marks if (i, m) in message_rows
        ]
        if sent_keys:
            conn.execute(
                update(actions)
                .where(
                    actions.c.instance_id == bindparam("b_i"),
                    actions.c.message_id == bindparam("b_m"),
                    actions.c.action == "message_sent",
                    actions.c.conversation_id.is_(None),
                )
                .values(conversation_id=bindparam("b_c")),
                [{"b_i": i, "b_m": m, "b_c": c} for i, m, c in sent_keys],
            )

    # ------------------------------------------------------------------ late actions and expiry
    def _drain_actions(self, limit: int = 5000) -> int:
        """Apply stored actions whose conversation exists now (they arrived before its messages or
        after them): conversation actions by contact and time, ``message_sent`` by message id."""
        applied = 0
        a, c, m = actions, conversations, messages
        for _attempt in range(5):
            try:
                with self._begin() as conn:
                    applied = self._drain_in(conn, a, c, m, limit)
                return applied
            except VersionConflictError:
                continue
        return applied

    def _drain_in(self, conn: Connection, a: Any, c: Any, m: Any, limit: int) -> int:
        q = (
            select(a, c.c.id.label("target_id"), c.c.opened_at.label("target_opened_at"))
            .join(
                c,
                and_(
                    c.c.instance_id == a.c.instance_id,
                    c.c.contact_key == a.c.contact_key,
                    c.c.opened_at <= a.c.occurred_at,
                    or_(c.c.closed_at.is_(None), c.c.closed_at >= a.c.occurred_at, a.c.action == "reopen"),
                ),
            )
            .where(a.c.conversation_id.is_(None), a.c.action.in_(sorted(ss.CONVERSATION_ACTIONS)))
            .order_by(a.c.occurred_at)
            .limit(limit)
        )
        best: dict[str, dict[str, Any]] = {}
        for row in conn.execute(q):
            r = utc_row(row)
            if r["id"] not in best or r["target_opened_at"] > best[r["id"]]["target_opened_at"]:
                best[r["id"]] = r
        batch = _Batch()
        if best:
            ids = sorted({r["target_id"] for r in best.values()})
            for part in chunks(ids):
                for row in conn.execute(select(c).where(c.c.id.in_(part))):
                    self._remember(batch, utc_row(row))
        for r in sorted(best.values(), key=lambda r: r["occurred_at"]):
            conv = batch.convs[r["target_id"]]
            if ss.accepts_action(conv, r["action"], r["occurred_at"], self.policy):
                ss.apply_action(conv, r)
                batch.applied_actions.append({"b_id": r["id"], "conversation_id": conv["id"]})
        self._write(conn, batch, {}, {}, {}, {}, {})
        applied = len(batch.applied_actions)
        applied += self._drain_message_sent(conn, limit)
        return applied

    def _drain_message_sent(self, conn: Connection, limit: int) -> int:
        a, m, c = actions, messages, conversations
        rows = conn.execute(
            select(
                a.c.id,
                a.c.actor_id,
                a.c.attendant_id,
                a.c.details,
                m.c.instance_id,
                m.c.message_id,
                m.c.timestamp,
                m.c.conversation_id,
            )
            .join(m, and_(m.c.instance_id == a.c.instance_id, m.c.message_id == a.c.message_id))
            .where(a.c.conversation_id.is_(None), a.c.action == "message_sent")
            .limit(limit)
        ).all()
        for row in rows:
            automated = bool(row.details.get("automated")) if isinstance(row.details, dict) else False
            sender = None if automated else (row.attendant_id or row.actor_id)
            conn.execute(
                update(m)
                .where(
                    m.c.instance_id == row.instance_id, m.c.message_id == row.message_id, m.c.timestamp == row.timestamp
                )
                .values(automated=automated, sender_attendant_id=sender)
            )
            conn.execute(update(a).where(a.c.id == row.id).values(conversation_id=row.conversation_id))
            conv = conn.execute(select(c).where(c.c.id == row.conversation_id)).first()
            if conv is None:
                continue
            if conv.first_response_message_id == row.message_id and automated:
                self._recompute_first_response(conn, utc_row(conv))
            elif conv.first_response_message_id == row.message_id and sender:
                conn.execute(update(c).where(c.c.id == conv.id).values(first_responder_id=sender))
        return len(rows)

    def _recompute_first_response(self, conn: Connection, conv: dict[str, Any]) -> None:
        m, c = messages, conversations
        first = conn.execute(
            select(m.c.message_id, m.c.timestamp, m.c.sender_attendant_id)
            .where(
                m.c.conversation_id == conv["id"],
                m.c.direction == "outbound",
                m.c.automated.is_(False),
                m.c.timestamp >= conv["opened_at"],
            )
            .order_by(m.c.timestamp)
            .limit(1)
        ).first()
        values: dict[str, Any] = {
            "first_response_at": None,
            "first_response_message_id": None,
            "first_responder_id": None,
        }
        if first is not None:
            values = {
                "first_response_at": as_utc(first.timestamp),
                "first_response_message_id": first.message_id,
                "first_responder_id": first.sender_attendant_id or conv["assignee_id"] or "unattributed",
            }
        conn.execute(update(c).where(c.c.id == conv["id"]).values(**values))

    def sweep(self, *, now: datetime | None = None, every_seconds: float = 30.0) -> int:
        """Close open conversations the inactivity rule has closed by the as-of instant (``now``, else
        :func:`~live.store_sql.live_as_of`): expired (answered or business-opened, idle past the timeout) or abandoned
        (waiting for a first response past the abandonment limit), with or without new traffic, as
        silver does. Runs at most every ``every_seconds`` unless ``now`` is given."""
        if now is None and time.monotonic() - self._last_sweep < every_seconds:
            return 0
        self._last_sweep = time.monotonic()
        c = conversations
        with self._begin() as conn:
            at = now or live_as_of(conn)
            is_waiting = and_(c.c.origin == "inbound", c.c.first_response_at.is_(None))
            rows = conn.execute(
                select(c.c.id, c.c.origin, c.c.first_response_at, c.c.opened_at, c.c.last_message_at, c.c.version)
                .where(
                    c.c.status == "open",
                    or_(
                        and_(is_waiting, c.c.opened_at < at - self.policy.abandon_after),
                        and_(not_(is_waiting), c.c.last_message_at < at - self.policy.timeout),
                    ),
                )
                .limit(20000)
            ).all()
            params: list[dict[str, Any]] = []
            for r in rows:
                conv = utc_row(r)
                status = ss.closed_by(conv, at, self.policy)
                if status is None:
                    continue
                ss.close(conv, status, self.policy)
                params.append(
                    {
                        "b_id": r.id,
                        "b_version": r.version,
                        "v_status": status,
                        "v_closed": conv["closed_at"],
                        "v_expired": conv["expired_at"],
                        "v_version": int(r.version or 1) + 1,
                    }
                )
            if not params:
                return 0
            stmt = (
                update(c)
                .where(c.c.id == bindparam("b_id"), c.c.status == "open", c.c.version == bindparam("b_version"))
                .values(
                    status=bindparam("v_status"),
                    closed_at=bindparam("v_closed"),
                    expired_at=bindparam("v_expired"),
                    version=bindparam("v_version"),
                    updated_at=datetime.now(UTC),
                )
            )
            return int(conn.execute(stmt, params).rowcount or 0)


def _bulk_insert(conn: Connection, table: Any, rows: list[dict[str, Any]]) -> None:
    """Insert many new rows: ``COPY`` on PostgreSQL (psycopg), executemany elsewhere."""
    if not rows:
        return
    if conn.dialect.name != "postgresql":
        for part in chunks(rows, 2000):
            conn.execute(insert(table), part)
        return
    cols = list(rows[0])
    raw = conn.connection.driver_connection
    quoted = ", ".join(f'"{c}"' for c in cols)
    with raw.cursor() as cur, cur.copy(f"COPY {table.name} ({quoted}) FROM STDIN") as copy:
        for row in rows:
            copy.write_row([row[c] for c in cols])


def _message_order(m: pz.Message) -> tuple[Any, ...]:
    """Timeline order shared with silver: time, inbound before outbound (before actions), then id."""
    return (m.timestamp, 0 if m.direction == "inbound" else 1, m.message_id)


_SCHEMAS = {WEBHOOK_EVENTS: WEBHOOK_EVENTS_SCHEMA, OPS_EVENTS: OPS_EVENTS_SCHEMA}


def _plain_strings(data: pa.Table) -> pa.Table:
    """delta-rs returns ``string_view`` columns; compute kernels want plain strings."""
    fields = [pa.field(f.name, pa.string()) if pa.types.is_string_view(f.type) else f for f in data.schema]
    return data.cast(pa.schema(fields))


def _merge_update(row: dict[str, Any], u: pz.MessageUpdate) -> None:
    row["status"] = pz.better_status(row.get("status"), u.status)
    if u.edited:
        row["edited"] = True
        if u.text is not None:
            row["text"] = u.text
    if u.revoked:
        row["revoked"] = True


def run_once(lake: Lake, engine: Engine, *, settings: Settings | None = None) -> int:
    """Apply every bronze row and action not yet applied; returns how many were applied."""
    return Projector(lake, engine, settings).run_once()


_DB_DOWN = (OperationalError, DBAPIError)
# Lake reads that fail while other processes write (e.g. delta-rs' "Expected contiguous commit
# files, but found gap" when a reader lists the log during concurrent appends), an unreachable
# object store, a file not fully visible yet: retried with the same backoff as the database.
_LAKE_TRANSIENT = (DeltaError, OSError, pa.ArrowException)
TRANSIENT_ERRORS = (*_DB_DOWN, *_LAKE_TRANSIENT, VersionConflictError)


class ConversationsKeptChangingError(VersionConflictError):
    """A batch conflicted with API actions on every attempt of one run (transient: retried)."""


PROJECTOR_LEASE = "projector"


def run_forever(
    lake: Lake,
    engine: Engine,
    *,
    settings: Settings | None = None,
    stop: Callable[[], bool] = lambda: False,
    on_new_conversations: Callable[[list[str]], None] | None = None,
    after_step: Callable[[], object] | None = None,
    lease: Lease | None = None,
) -> None:
    """``beazap worker``: hold the projector lease, poll bronze and apply.

    A second worker waits as a standby until the lease is released or expires. A database outage or
    a transient lake read error (:data:`TRANSIENT_ERRORS`) pauses here (exponential backoff with
    tenacity, never giving up: the worker does not exit on them) and the next successful run
    catches up from the committed cursor — how far behind it is shows in :func:`projector_lag`
    (``/readyz``, ``beazap_projector_lag_seconds``); a lost lease (this process stalled past its
    TTL and a standby took over) sends it back to standby with nothing half-applied.
    """
    settings = settings or get_settings()
    lease = lease or Lease(engine, PROJECTOR_LEASE, ttl=timedelta(seconds=settings.projector_lease_seconds))
    projector = Projector(lake, engine, settings, lease=lease)
    projector.on_new_conversations = on_new_conversations
    poll = settings.projector_poll_ms / 1000
    renew_every = lease.ttl.total_seconds() / 3

    def _log_retry(state: Any) -> None:
        error = state.outcome.exception() if state.outcome is not None else None
        kind = "projector.database_unavailable" if isinstance(error, _DB_DOWN) else "projector.lake_read_failed"
        log.warning(kind, attempt=state.attempt_number, error=type(error).__name__)

    db_retry = retry(
        retry=retry_if_exception_type(TRANSIENT_ERRORS),
        wait=wait_exponential(multiplier=0.2, max=10),
        stop=stop_never,
        before_sleep=_log_retry,
        reraise=True,
    )

    @db_retry
    def _acquire() -> bool:
        return lease.acquire()

    @db_retry
    def _step() -> int:
        if stop():
            return 0
        applied = projector.run_once()
        if after_step is not None:
            after_step()
        return applied

    holding = False
    waiting_logged = False
    renewed_at = 0.0
    try:
        while not stop():
            if not holding:
                holding = _acquire()
                if not holding:
                    if not waiting_logged:
                        log.info("projector.standby", lease=PROJECTOR_LEASE)
                        waiting_logged = True
                    time.sleep(max(poll, renew_every / 2))  # polling the lease, not synchronizing a test
                    continue
                log.info("projector.lease_acquired", holder=lease.holder)
                waiting_logged = False
                renewed_at = time.monotonic()
            try:
                applied = _step()
                if time.monotonic() - renewed_at >= renew_every:
                    db_retry(lease.renew)()
                    renewed_at = time.monotonic()
            except LeaseLostError:
                log.warning("projector.lease_lost", holder=lease.holder)
                holding = False
                continue
            if applied:
                log.info("projector.applied", rows=applied)
                renewed_at = time.monotonic()  # the step's transactions renewed it
            else:
                time.sleep(poll)
    finally:
        if holding:
            try:
                lease.release()
            except _DB_DOWN:
                log.warning("projector.lease_release_failed")  # it expires on its own


@dataclass(frozen=True)
class ProjectorLag:
    """How far the live projector is behind bronze (``/readyz``, ``beazap_projector_lag_seconds``)."""

    seconds: float  # age of the oldest bronze commit not applied yet (0 when caught up)
    versions_behind: int
    cursor_version: int
    latest_version: int


def projector_lag(lake: Lake, engine: Engine, *, now: datetime | None = None) -> ProjectorLag:
    """The projector's lag behind ``bronze/webhook_events``: the age of the first commit it has not
    fully applied (its ``commitInfo`` timestamp; the cursor's last move when that commit file is gone)."""
    now = now or datetime.now(UTC)
    with engine.connect() as conn:
        version, _offset = read_cursor(conn, WEBHOOK_CURSOR)
        moved = conn.execute(
            select(projector_cursors.c.updated_at).where(projector_cursors.c.name == WEBHOOK_CURSOR)
        ).scalar()
    latest = log_tail.latest_version(lake, WEBHOOK_EVENTS, version)  # by path: no listing race
    if version >= latest:
        return ProjectorLag(0.0, 0, version, latest)
    pending_since = log_tail.commit_time(lake, WEBHOOK_EVENTS, version + 1)
    if pending_since is None:
        pending_since = as_utc(moved) if moved is not None else now
    return ProjectorLag(max(0.0, (now - pending_since).total_seconds()), latest - version, version, latest)
