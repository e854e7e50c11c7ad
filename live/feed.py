"""The live queue's change feed: one poller per process fanning conversation changes out to streams.

Every insert/update of a conversation appends a row to ``live_changes`` (a database trigger,
migration 0013_console); the row's id is the event id, monotonic, so a client that reconnects with
``Last-Event-ID`` catches up from the table and then continues live, without duplicates. One
:class:`ChangeFeed` per process reads the table (a cheap indexed range read every ``interval``) and
builds each event ONCE — the conversation's state and its SLA clocks (:mod:`live.sla`, on the
policy's basis) — for every subscriber whose tenant (instances, optional team) it concerns.

On PostgreSQL the trigger also sends ``NOTIFY beazap_live``; a listener thread wakes the feed at
once, so the poll interval is only a fallback there. Sequence values can commit out of order: a
missing id is waited for up to ``gap_grace`` seconds before it is skipped (a rolled-back insert
never arrives).
"""

from __future__ import annotations

import asyncio
import contextlib
import threading
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

import orjson
from sqlalchemy import Engine, delete, func, select

from core.logging import get_logger
from core.utc import utc_row
from live.sla import clocks, policies
from storage.tables import conversations, live_changes

log = get_logger(__name__)
Clock = Callable[[], datetime]
CATCH_UP_LIMIT = 5000


def now_utc() -> datetime:
    return datetime.now(UTC)


def kind_of(conv: dict[str, Any]) -> str:
    """waiting | assigned | resolved | expired: where the conversation stands in the queue."""
    if conv["status"] == "open":
        return "assigned" if conv["assignee_id"] else "waiting"
    return str(conv["status"])


def encode(event: dict[str, Any], name: str = "conversation") -> bytes:
    """One SSE frame; the feed encodes each event once for all its subscribers."""
    return b"id: %d\nevent: %s\ndata: %s\n\n" % (event["id"], name.encode(), orjson.dumps(event))


def build_events(engine: Engine, changes: list[tuple[int, str, str]], now: datetime) -> list[dict[str, Any]]:
    """Events for ``(change id, instance, conversation)`` rows: the latest change per conversation."""
    latest: dict[str, int] = {}
    for change_id, _instance, conv_id in changes:
        latest[conv_id] = max(change_id, latest.get(conv_id, 0))
    if not latest:
        return []
    with engine.connect() as conn:
        rows = [utc_row(r) for r in conn.execute(select(conversations).where(conversations.c.id.in_(list(latest))))]
    rules = policies(engine, sorted({r["instance_id"] for r in rows}))
    events = []
    for conv in rows:
        sla = clocks(conv, rules[conv["instance_id"]], now)
        events.append(
            {
                "id": latest[conv["id"]],
                "kind": kind_of(conv),
                "conversation": {
                    "id": conv["id"],
                    "instance_id": conv["instance_id"],
                    "contact_key": conv["contact_key"],
                    "status": conv["status"],
                    "assignee_id": conv["assignee_id"],
                    "team_id": conv["team_id"],
                    "opened_at": conv["opened_at"],
                    "last_message_at": conv["last_message_at"],
                    "awaiting_since": conv["awaiting_since"],
                    "first_response_at": conv["first_response_at"],
                    "version": conv["version"],
                },
                "sla": {
                    "state": sla["state"],
                    "next_breach_at": sla["next_breach_at"],
                    "seconds_to_breach": (
                        max(0.0, (sla["next_breach_at"] - now).total_seconds()) if sla["next_breach_at"] else None
                    ),
                },
            }
        )
    return sorted(events, key=lambda e: e["id"])


def read_changes(
    engine: Engine, after: int, *, upto: int | None = None, instance_ids: Iterable[str] | None = None, limit: int = 1000
) -> list[tuple[int, str, str]]:
    c = live_changes.c
    q = select(c.id, c.instance_id, c.conversation_id).where(c.id > after).order_by(c.id).limit(limit)
    if upto is not None:
        q = q.where(c.id <= upto)
    if instance_ids is not None:
        q = q.where(c.instance_id.in_(sorted(instance_ids)))
    with engine.connect() as conn:
        return [(int(r.id), r.instance_id, r.conversation_id) for r in conn.execute(q)]


def last_change_id(engine: Engine) -> int:
    with engine.connect() as conn:
        return int(conn.execute(select(func.coalesce(func.max(live_changes.c.id), 0))).scalar_one())


def prune_changes(engine: Engine, before: datetime) -> int:
    """Delete changes older than ``before`` (a client that far behind reloads: ``event: reset``)."""
    with engine.begin() as conn:
        return int(conn.execute(delete(live_changes).where(live_changes.c.changed_at < before)).rowcount or 0)


@dataclass(eq=False)
class Subscriber:
    """One open stream: its tenant filter, the id it has seen up to at subscription, its queue."""

    instance_ids: frozenset[str]
    team_id: str | None
    horizon: int
    attendant_id: str | None = None  # an attendant's view: their own conversations and unassigned ones
    queue: asyncio.Queue[bytes | None] = field(default_factory=lambda: asyncio.Queue(maxsize=1000))
    overflowed: bool = False

    def wants(self, event: dict[str, Any]) -> bool:
        conv = event["conversation"]
        if conv["instance_id"] not in self.instance_ids:
            return False
        if self.team_id is not None and conv["team_id"] != self.team_id:
            return False
        return self.attendant_id is None or conv["assignee_id"] in (None, self.attendant_id)


class ChangeFeed:
    """The process's single reader of ``live_changes``; streams subscribe to it."""

    def __init__(
        self, engine: Engine, *, interval: float = 0.2, gap_grace: float = 2.0, clock: Clock = now_utc
    ) -> None:
        self.engine = engine
        self.interval = interval
        self.gap_grace = gap_grace
        self.clock = clock
        self.cursor = last_change_id(engine)
        self.subscribers: set[Subscriber] = set()
        self._gap_seen: float | None = None
        self._task: asyncio.Task[None] | None = None
        self._wake: asyncio.Event | None = None
        self._stop_listening = threading.Event()
        self.listening = threading.Event()  # PostgreSQL: set once LISTEN is in place

    def subscribe(
        self, instance_ids: Iterable[str], team_id: str | None = None, attendant_id: str | None = None
    ) -> Subscriber:
        sub = Subscriber(frozenset(instance_ids), team_id, self.cursor, attendant_id)
        self.subscribers.add(sub)
        return sub

    def unsubscribe(self, sub: Subscriber) -> None:
        self.subscribers.discard(sub)

    def start(self) -> None:
        if self._task is None:
            loop = asyncio.get_running_loop()
            self._wake = asyncio.Event()
            self._task = loop.create_task(self._run(), name="live-change-feed")
            if self.engine.dialect.name == "postgresql":
                threading.Thread(target=self._listen, args=(loop,), name="live-feed-listen", daemon=True).start()

    def _listen(self, loop: asyncio.AbstractEventLoop) -> None:
        """PostgreSQL: wake the feed on ``NOTIFY beazap_live`` (reconnects after a database outage)."""
        while not self._stop_listening.is_set():
            try:
                raw = self.engine.raw_connection()
                try:
                    conn = raw.driver_connection
                    conn.autocommit = True  # type: ignore[union-attr]
                    conn.execute("LISTEN beazap_live")  # type: ignore[union-attr]
                    self.listening.set()
                    while not self._stop_listening.is_set():
                        if any(True for _ in conn.notifies(timeout=1.0, stop_after=1)):  # type: ignore[union-attr]
                            loop.call_soon_threadsafe(self._wake_up)
                finally:
                    self.listening.clear()
                    raw.invalidate()  # a LISTENing session never goes back to the pool
            except Exception as exc:
                log.warning("live_feed.listen_failed", error=type(exc).__name__)
                self._stop_listening.wait(self.interval * 10)

    def _wake_up(self) -> None:
        if self._wake is not None:
            self._wake.set()

    async def stop(self) -> None:
        self._stop_listening.set()
        if self._task is not None:
            self._task.cancel()
            await asyncio.gather(self._task, return_exceptions=True)
            self._task = None
        for sub in list(self.subscribers):
            self._close(sub)

    async def _run(self) -> None:
        while True:
            try:
                await self.poll_once()
            except asyncio.CancelledError:
                raise
            except Exception as exc:  # a database hiccup must not end the feed; retried next tick
                log.warning("live_feed.poll_failed", error=type(exc).__name__)
            assert self._wake is not None
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._wake.wait(), self.interval)
            self._wake.clear()

    async def poll_once(self) -> int:
        """Read new changes, build their events once, hand them to the subscribers; how many changes."""
        changes = await asyncio.to_thread(read_changes, self.engine, self.cursor)
        changes = self._contiguous(changes)
        if not changes:
            return 0
        events = await asyncio.to_thread(build_events, self.engine, changes, self.clock())
        self.cursor = changes[-1][0]
        frames = [(event, encode(event)) for event in events]
        for sub in list(self.subscribers):
            for event, frame in frames:
                if sub.wants(event):
                    self._offer(sub, frame)
        return len(changes)

    def _contiguous(self, changes: list[tuple[int, str, str]]) -> list[tuple[int, str, str]]:
        """The changes up to the first id gap, unless that gap has been open longer than ``gap_grace``."""
        expected = self.cursor + 1
        for n, (change_id, _i, _c) in enumerate(changes):
            if change_id != expected:
                seen = self._gap_seen = self._gap_seen or time.monotonic()
                if time.monotonic() - seen < self.gap_grace:
                    return changes[:n]
                self._gap_seen = None
                return changes  # the missing ids never committed: skip them
            expected += 1
        self._gap_seen = None
        return changes

    def _offer(self, sub: Subscriber, frame: bytes) -> None:
        try:
            sub.queue.put_nowait(frame)
        except asyncio.QueueFull:  # a stalled client: close it; it resumes with Last-Event-ID
            sub.overflowed = True
            self._close(sub)

    def _close(self, sub: Subscriber) -> None:
        self.subscribers.discard(sub)
        while True:
            try:
                sub.queue.put_nowait(None)
                return
            except asyncio.QueueFull:
                sub.queue.get_nowait()
