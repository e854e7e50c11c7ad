"""The simulated world of one instance: customers, attendants, conversations, groups and calls.

Phase 1 (:meth:`InstanceWorld.build_timeline`) decides what really happens — every message once at
its event time (whole seconds, never two items of one chat at the same second), every operational
action (at fractional seconds, so never tied with a message), calls and group activity.
Phase 2 (:func:`beazap.simulator.webhooks.emit`) turns that into the webhooks Evolution would post (upserts,
``send.message``, acks, edits, revokes, reactions, presence, contacts, groups, calls, connection).
The delivery layer then adds duplicates, out-of-order and late arrivals.
"""

from __future__ import annotations

import math
import random
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

from beazap.simulator import payloads as pl
from beazap.simulator.config import SimulationConfig
from beazap.simulator.model import Attendant, SimInstance, Team
from core.identity import normalize_phone

# Relative inbound traffic by local hour (customers write mostly in business hours).
HOUR_PROFILE = (
    0.15, 0.08, 0.05, 0.04, 0.04, 0.08, 0.25, 0.6, 1.3, 1.8, 1.9, 1.7,
    1.2, 1.3, 1.7, 1.8, 1.6, 1.3, 1.0, 0.8, 0.7, 0.6, 0.4, 0.25,
)  # fmt: skip
DAY_FACTOR = (1.0, 1.0, 1.0, 1.0, 0.95, 0.45, 0.2)  # Monday..Sunday
DDDS = ("11", "21", "31", "41", "51", "61", "71", "81", "85", "92", "47", "19", "27", "62")
STATUS_WIRE = {"server_ack": "SERVER_ACK", "delivery_ack": "DELIVERY_ACK", "read": "READ", "played": "PLAYED"}
RANK = {"pending": 1, "server_ack": 2, "delivery_ack": 3, "read": 4, "played": 5}


@dataclass
class Contact:
    """A customer of one instance and how WhatsApp addresses them."""

    phone: str  # E.164 with the 9th digit (+5511987654321)
    lid: str  # 181234567890123@lid
    mode: str  # pn | pn_alt | lid_alt | lid_late | lid_only
    no9: bool  # sometimes written without the Brazilian 9th digit
    name: str
    learn_after: int = 0  # lid_late: messages before the phone shows up
    ephemeral: bool = False  # disappearing messages on in this chat
    seen: int = 0
    learned: bool = False
    announced: bool = False
    busy_until: float = -math.inf
    last_t: int = -(10**12)  # last second used by an item of this chat
    last_action_t: float = -math.inf
    timeline: list[Any] = field(default_factory=list)  # TL items for sessionization
    messages: list[Msg] = field(default_factory=list)

    @property
    def contact_key(self) -> str:
        if self.mode == "lid_only" or (self.mode == "lid_late" and not self.learned):
            return self.lid
        return self.phone

    def phone_jid(self, rng: random.Random) -> str:
        digits = self.phone[1:]
        if self.no9 and rng.random() < 0.5:
            digits = digits[:4] + digits[5:]
        return digits + "@s.whatsapp.net"


@dataclass
class Msg:
    """One message as it really happened, plus what will be posted about it."""

    id: str
    chat_jid: str
    chat_type: str  # direct | group | broadcast
    direction: str
    kind: str
    t: int
    via: str  # customer | app | api
    automated: bool = False
    sender: str | None = None  # BeaZap sender (attendant / bot / system)
    text: str | None = None
    message: dict[str, Any] = field(default_factory=dict)
    message_type: str = "conversation"
    source: str = "unknown"
    push_name: str | None = None
    contact: Contact | None = None
    alt_jid: str | None = None
    addressing: str | None = None
    participant: str | None = None
    participant_alt: str | None = None
    quoted: Msg | None = None
    ts_string: bool = False
    echo: bool = False  # API-sent message also posted as messages.upsert
    db_id: str = ""
    acks: list[tuple[float, str]] = field(default_factory=list)
    edit: tuple[int, str] | None = None
    revoke: tuple[int, bool] | None = None  # (time, also messages.delete)
    reactions: list[tuple[int, str, bool, str]] = field(default_factory=list)  # (t, emoji, fromMe, id)
    status: str = "delivery_ack"


@dataclass
class Action:
    t: float
    action_id: str
    action: str
    actor_id: str | None
    attendant_id: str | None
    team_id: str | None
    details: dict[str, Any]
    contact: Contact


@dataclass
class Call:
    call_id: str
    contact: Contact
    jid: str
    is_video: bool
    offered: int
    accepted: int | None
    ended: int
    outcome: str


@dataclass
class Group:
    jid: str
    subject: str
    members: list[Contact]
    ephemeral: bool = False
    last_t: int = 0


class InstanceWorld:
    """Generates one instance's traffic deterministically from its own random stream."""

    def __init__(
        self,
        cfg: SimulationConfig,
        inst: SimInstance,
        teams: list[Team],
        attendants: list[Attendant],
        rng: random.Random,
    ) -> None:
        self.cfg, self.inst, self.rng = cfg, inst, rng
        self.tz = ZoneInfo(inst.timezone)
        self.teams = teams
        self.attendants = attendants
        self.by_team: dict[str, list[Attendant]] = {t.id: [a for a in attendants if a.team_id == t.id] for t in teams}
        self.timeout = cfg.session_timeout_hours * 3600.0
        self.reopen = cfg.reopen_window_hours * 3600.0
        self.abandon = cfg.abandon_after_hours * 3600.0
        start_local = datetime(cfg.start.year, cfg.start.month, cfg.start.day, tzinfo=self.tz)
        self.t_start = start_local.timestamp()
        end_day = cfg.start + timedelta(days=cfg.days)
        self.t_end = datetime(end_day.year, end_day.month, end_day.day, tzinfo=self.tz).timestamp()
        self.live = cfg.window is not None
        if cfg.window is not None:
            self.t_start, self.t_end = cfg.window
        self.contacts: list[Contact] = []
        self.phones: set[str] = set()
        self.ids: set[str] = set()
        self.messages: list[Msg] = []
        self.actions: list[Action] = []
        self.calls: list[Call] = []
        self.groups: list[Group] = []
        self.group_events: list[tuple[float, str, Any]] = []
        self.extra_events: list[tuple[float, str, Any]] = []

    # --- helpers ----------------------------------------------------------------------------------
    def new_id(self, source: str) -> str:
        while True:
            mid = pl.message_id(self.rng, source)
            if mid not in self.ids:
                self.ids.add(mid)
                return mid

    def new_action_id(self) -> str:
        while True:
            aid = "act-" + pl.hex_id(self.rng, 20).lower()
            if aid not in self.ids:
                self.ids.add(aid)
                return aid

    def local(self, t: float) -> datetime:
        return datetime.fromtimestamp(t, self.tz)

    def in_hours(self, t: float) -> bool:
        lt = self.local(t)
        if lt.weekday() < 5:
            return self.cfg.business_open_hour <= lt.hour < self.cfg.business_close_hour
        if lt.weekday() == 5:
            return self.cfg.business_open_hour <= lt.hour < self.cfg.saturday_close_hour
        return False

    def next_open(self, t: float) -> float:
        lt = self.local(t)
        day = lt.date()
        for _ in range(8):
            opening = datetime(day.year, day.month, day.day, self.cfg.business_open_hour, tzinfo=self.tz).timestamp()
            if opening > t and self.in_hours(opening + 1):
                return opening
            day += timedelta(days=1)
        return t + 3600

    def lognormal(self, median: float, sigma: float, lo: float, hi: float) -> float:
        return min(hi, max(lo, median * math.exp(self.rng.gauss(0.0, sigma))))

    def human_delay(self, t: float) -> float:
        """How long an attendant takes to answer something received at ``t``."""
        if self.in_hours(t):
            return self.lognormal(150, 1.2, 8, 6 * 3600) / self.cfg.pace
        if self.rng.random() < 0.25:  # on call / answering from home
            return self.lognormal(1200, 1.0, 30, 8 * 3600) / self.cfg.pace
        return self.next_open(t) - t + self.lognormal(600, 1.0, 20, 3 * 3600)

    def customer_delay(self) -> float:
        return self.lognormal(90, 1.6, 5, 20 * 3600) / self.cfg.pace

    def place(self, c: Contact, t: float) -> int:
        """A whole second for the next message of ``c``'s chat: after everything so far, clear of the
        session-timeout boundary (so expiry is never a matter of one second)."""
        sec = max(int(t), c.last_t + 1)
        gap = sec - c.last_t
        if abs(gap - self.timeout) <= 120:
            sec = c.last_t + int(self.timeout) + 300
        c.last_t = sec
        return sec

    def poisson(self, lam: float) -> int:
        if lam <= 0:
            return 0
        if lam > 30:
            return max(0, round(self.rng.gauss(lam, math.sqrt(lam))))
        limit, k, p = math.exp(-lam), 0, 1.0
        while True:
            p *= self.rng.random()
            if p <= limit:
                return k
            k += 1

    def busy_times(self, per_day: float) -> list[float]:
        """Arrival times over the simulated days following the hourly and weekday profile."""
        out: list[float] = []
        total = sum(HOUR_PROFILE)
        if self.live:  # the local days the window touches
            first, last = self.local(self.t_start).date(), self.local(self.t_end).date()
            days = [first + timedelta(days=d) for d in range((last - first).days + 1)]
        else:
            days = [self.cfg.start + timedelta(days=d) for d in range(self.cfg.days)]
        for day in days:
            factor = DAY_FACTOR[day.weekday()]
            for hour in range(24):
                n = self.poisson(per_day * self.cfg.pace * factor * HOUR_PROFILE[hour] / total)
                base = datetime(day.year, day.month, day.day, hour, tzinfo=self.tz).timestamp()
                out.extend(base + self.rng.uniform(0, 3600) for _ in range(n))
        if self.live:
            out = [t for t in out if self.t_start <= t < self.t_end]
        out.sort()
        return out

    # --- people -----------------------------------------------------------------------------------
    def new_phone(self) -> str:
        while True:
            if self.rng.random() < 0.03:
                phone = "+3519" + "".join(self.rng.choice("0123456789") for _ in range(8))
            else:
                ddd = self.rng.choice(DDDS)
                phone = (
                    "+55"
                    + ddd
                    + "9"
                    + self.rng.choice("6789")
                    + "".join(self.rng.choice("0123456789") for _ in range(7))
                )
            if phone not in self.phones and normalize_phone(phone) == phone:
                self.phones.add(phone)
                return phone

    def new_contact(self, mode: str | None = None) -> Contact:
        cfg, r = self.cfg, self.rng.random()
        phone = self.new_phone()
        if mode is None:
            if r < cfg.p_lid_only:
                mode = "lid_only"
            elif r < cfg.p_lid_only + cfg.p_lid_late:
                mode = "lid_late"
            elif r < cfg.p_lid_only + cfg.p_lid_late + cfg.p_lid_alt:
                mode = "lid_alt"
            elif r < cfg.p_lid_only + cfg.p_lid_late + cfg.p_lid_alt + 0.1:
                mode = "pn_alt"
            else:
                mode = "pn"
        lid = "1" + "".join(self.rng.choice("0123456789") for _ in range(14)) + "@lid"
        c = Contact(
            phone=phone,
            lid=lid,
            mode=mode,
            no9=phone.startswith("+55") and self.rng.random() < cfg.p_no_ninth_digit,
            name=self.rng.choice(pl.NAMES),
            learn_after=self.rng.randint(1, 4),
            ephemeral=self.rng.random() < 0.1,
        )
        self.contacts.append(c)
        return c

    def address(self, c: Contact) -> tuple[str, str | None, str | None]:
        """(remoteJid, remoteJidAlt, addressingMode) of the next message with ``c``."""
        mode = c.mode
        c.seen += 1
        if mode == "lid_late":
            if c.seen <= c.learn_after:
                return c.lid, None, None
            c.learned = True
            mode = "lid_alt"
        if mode == "pn":
            return c.phone_jid(self.rng), None, None
        if mode == "pn_alt":
            return c.phone_jid(self.rng), c.lid, "pn"
        if mode == "lid_alt":
            return c.lid, c.phone_jid(self.rng), "lid"
        return c.lid, None, None

    def pick_attendant(self, team_id: str | None = None) -> Attendant:
        pool = self.by_team.get(team_id or "", []) or self.attendants
        return self.rng.choice(pool)

    # --- timeline: messages and actions -------------------------------------------------------------
    def add_message(
        self,
        c: Contact,
        t: float,
        direction: str,
        via: str,
        *,
        automated: bool = False,
        sender: str | None = None,
        text: str | None = None,
        kind: str | None = None,
    ) -> Msg | None:
        if t >= self.t_end:
            return None
        sec = self.place(c, t)
        if sec >= self.t_end:
            return None
        rng = self.rng
        if kind is None:
            kind = "text"
            if not automated and rng.random() < self.cfg.p_media * (1.0 if direction == "inbound" else 0.5):
                kind = rng.choices(pl.MEDIA_KINDS, pl.MEDIA_WEIGHTS)[0]
        if text is None:
            text = rng.choice(pl.TEXTS_IN if direction == "inbound" else pl.TEXTS_OUT)
        if direction == "inbound":
            source = rng.choice(("android", "android", "ios", "web"))
        elif via == "app":
            source = rng.choice(("android", "ios", "web"))
        else:
            source = "unknown"
        jid, alt, mode = self.address(c)
        message, mtype, shown = pl.content(rng, kind, text, sec, c.ephemeral)
        m = Msg(
            id=self.new_id(source if via != "api" else "api"),
            chat_jid=jid,
            chat_type="direct",
            direction=direction,
            kind=kind,
            t=sec,
            via=via,
            automated=automated,
            sender=sender,
            text=shown,
            message=message,
            message_type=mtype,
            source=source,
            push_name=c.name if direction == "inbound" else "Você",
            contact=c,
            alt_jid=alt,
            addressing=mode,
            ts_string=rng.random() < self.cfg.p_timestamp_string,
            echo=via == "api" and rng.random() < self.cfg.p_upsert_echo,
            db_id=pl.cuid(rng),
            status="delivery_ack" if direction == "inbound" else ("pending" if via == "api" else "server_ack"),
        )
        if direction == "outbound" and c.messages and c.messages[-1].direction == "inbound" and rng.random() < 0.2:
            m.quoted = c.messages[-1]
        c.messages.append(m)
        self.messages.append(m)
        if via == "api":
            self.add_action(
                c, sec - 0.3, "message_sent", sender, None, None,
                {"message_id": m.id, "automated": automated}, exact=True,
            )  # fmt: skip
        return m

    def add_action(
        self,
        c: Contact,
        t: float,
        action: str,
        actor: str | None,
        attendant: Attendant | None,
        team_id: str | None,
        details: dict[str, Any] | None = None,
        *,
        exact: bool = False,
    ) -> float | None:
        """Record an ops action; lifecycle/assignment actions get a fractional second that is later
        than the chat's previous action (never tied with a message or another action)."""
        if not exact:
            t = math.floor(t) + 0.5
            if t <= c.last_action_t:
                t = c.last_action_t + 0.25
            if t - math.floor(t) == 0:
                t += 0.5
            c.last_action_t = t
        if t >= self.t_end:
            return None
        self.actions.append(
            Action(
                t=t,
                action_id=self.new_action_id(),
                action=action,
                actor_id=actor,
                attendant_id=attendant.id if attendant else None,
                team_id=attendant.team_id if attendant else team_id,
                details=details or {},
                contact=c,
            )
        )
        return t

    def inbound_burst(self, c: Contact, t: float, n: int) -> Msg | None:
        last = None
        for i in range(n):
            m = self.add_message(c, t if i == 0 else last.t + self.rng.uniform(3, 90), "inbound", "customer")  # type: ignore[union-attr]
            if m is None:
                break
            last = m
        return last

    def conversation(self, c: Contact, t0: float, origin: str, depth: int = 0) -> None:
        """One conversation of ``c`` from ``t0``; sets ``c.busy_until`` to when the contact is free."""
        cfg, rng = self.cfg, self.rng
        assignee: Attendant | None = None
        if origin == "inbound":
            first = self.add_message(c, t0, "inbound", "customer")
            if first is None:
                c.busy_until = math.inf
                return
            last = first
            if self.inst.auto_greeting:
                g = self.add_message(
                    c, first.t + rng.uniform(1, 4), "outbound", "api", automated=True, sender="bot",
                    text=pl.GREETING, kind="text",
                )  # fmt: skip
                last = g or last
            n_more = rng.choices((0, 1, 2, 3), (55, 25, 12, 8))[0]
            if n_more:
                last = self.inbound_burst(c, last.t + rng.uniform(3, 60), n_more) or last
            if rng.random() >= cfg.p_unassigned:
                team = rng.choice(self.teams)
                source = rng.choice(("rule", "llm"))
                details = {"source": source, "model": "gpt-4o-mini" if source == "llm" else None,
                           "confidence": round(rng.uniform(0.55, 0.99), 2) if source == "llm" else 1.0}  # fmt: skip
                t_route = self.add_action(c, first.t + rng.uniform(1, 20), "route", "router", None, team.id, details)
                if t_route is not None:
                    assignee = self.pick_attendant(team.id)
                    self.add_action(c, t_route + rng.uniform(1, 10), "assign", "router", assignee, None)
            answered = rng.random() >= cfg.p_no_reply
            turns = rng.choices((1, 2, 3, 4, 5), (35, 30, 18, 10, 7))[0]
            last_inbound = last
        else:
            who = rng.random()
            if who < 0.25:
                first = self.add_message(c, t0, "outbound", "api", automated=True, sender="system", text=pl.CAMPAIGN)
            elif who < 0.85:
                assignee = self.pick_attendant()
                first = self.add_message(c, t0, "outbound", "api", sender=assignee.id)
            else:
                first = self.add_message(c, t0, "outbound", "app")
            if first is None:
                c.busy_until = math.inf
                return
            last = first
            if assignee is not None:
                self.add_action(c, first.t + 1, "assign", assignee.id, assignee, None)
            answered = rng.random() < 0.6
            turns = rng.choices((1, 2, 3), (50, 35, 15))[0]
            last_inbound = None
            if answered:
                last_inbound = self.inbound_burst(c, last.t + self.customer_delay(), rng.choice((1, 1, 2)))
                if last_inbound is None:
                    c.busy_until = math.inf
                    return
                last = last_inbound
        # --- the back and forth -------------------------------------------------------------------
        for turn in range(turns):
            if not answered or last_inbound is None:
                break
            t_reply = last_inbound.t + self.human_delay(last_inbound.t)
            if t_reply >= self.t_end:
                c.busy_until = math.inf
                return
            # An answer after (nearly) a day of silence lands in a new conversation: nobody is assigned
            # there yet, and actions for the old one must not drift past its expiry.
            fresh = t_reply - last.t > self.timeout - 1800
            if fresh:
                assignee = None
            if not fresh and assignee is not None and rng.random() < cfg.p_transfer:
                target_team = rng.choice(self.teams)
                new = self.pick_attendant(target_team.id)
                if new.id != assignee.id:
                    actor = assignee.id if rng.random() < 0.7 else "supervisor"
                    self.add_action(c, last.t + max(1.0, (t_reply - last.t) / 2), "transfer", actor, new, None)
                    assignee = new
                    t_reply += rng.uniform(30, 600)
            via = "app" if rng.random() < cfg.p_phone_app else "api"
            assign_after = False
            if via == "api" and assignee is None:
                assignee = self.pick_attendant()
                if fresh:
                    assign_after = True  # the reply opens the conversation; the attendant takes it
                else:
                    self.add_action(c, max(last.t + 1.0, t_reply - 2), "assign", assignee.id, assignee, None)
            sender = assignee.id if (via == "api" and assignee) else None
            reply = self.add_message(c, t_reply, "outbound", via, sender=sender)
            if reply is None:
                c.busy_until = math.inf
                return
            if assign_after and assignee is not None:
                self.add_action(c, reply.t + 1, "assign", assignee.id, assignee, None)
            last = reply
            if rng.random() < 0.35:
                extra = self.add_message(c, reply.t + rng.uniform(5, 90), "outbound", via, sender=sender)
                last = extra or last
            if turn == turns - 1:
                break
            nxt = self.inbound_burst(c, last.t + self.customer_delay(), rng.choices((1, 2, 3), (60, 30, 10))[0])
            if nxt is None:
                c.busy_until = math.inf
                return
            last = last_inbound = nxt
            if rng.random() < 0.03 and assignee is not None:
                self.add_action(c, last.t + 1, "unassign", assignee.id, None, assignee.team_id)
                assignee = None
        # --- the end ------------------------------------------------------------------------------
        if rng.random() < cfg.p_resolve:
            delay = min(self.lognormal(900, 1.3, 60, 6 * 3600) / cfg.pace, self.timeout - 1800)
            resolver = assignee or self.pick_attendant()
            t_res = self.add_action(c, last.t + delay, "resolve", resolver.id, assignee, None)
            if t_res is None:
                c.busy_until = math.inf
                return
            if rng.random() < 0.03:  # resolved by mistake, reopened and resolved again
                t_re = self.add_action(c, t_res + rng.uniform(20, 120), "reopen", resolver.id, assignee, None)
                if t_re is not None and t_re - last.t < self.timeout - 1800:
                    self.add_action(c, t_re + rng.uniform(60, 900), "resolve", resolver.id, assignee, None)
            c.busy_until = max(c.last_action_t, float(c.last_t)) + 1
            if depth < 3 and rng.random() < cfg.p_return_within_window:
                back = c.busy_until + rng.uniform(120, max(240.0, self.reopen - 1800))
                if back < self.t_end:
                    self.conversation(c, back, "inbound", depth + 1)
        else:
            c.busy_until = c.last_t + self.timeout + 600

    def free_contact(self, t: float, p_existing: float) -> Contact:
        """A contact with no conversation going on at ``t`` (returning ones come back after the reopen
        window; comebacks within it are generated by :meth:`conversation`)."""
        if self.contacts and self.rng.random() < p_existing:
            for _ in range(6):
                c = self.rng.choice(self.contacts)
                if c.busy_until < t - self.reopen - 3600 and c.last_t < t - 60:
                    return c
        return self.new_contact()

    # --- groups, calls, extras ----------------------------------------------------------------------
    def build_groups(self) -> None:
        cfg, rng = self.cfg, self.rng
        for g in range(cfg.groups_per_instance):
            members = [self.new_contact("pn") for _ in range(rng.randint(3, 7))]
            members += [self.new_contact("lid_alt") for _ in range(rng.randint(0, 2))]
            for m in members:
                m.busy_until = math.inf  # group members are not used for direct chats
            group = Group(
                jid="1203630" + "".join(rng.choice("0123456789") for _ in range(11)) + "@g.us",
                subject=rng.choice(("Atacado - Clientes VIP", "Revendedores", "Equipe de entregas", "Promoções"))
                + f" {g + 1}",
                members=members,
                ephemeral=g == 0,
            )
            self.groups.append(group)
            t_meta = self.t_start + (1 if self.live else 60) + g
            self.group_events.append((t_meta, "groups.upsert", [self.group_meta(group)]))
            for t in self.busy_times(cfg.group_messages_per_day):
                self.group_message(group, t)
            if cfg.days > 1 and not self.live:  # someone joins and someone leaves
                self.group_participants(group, self.t_start + rng.uniform(3600, cfg.days * 86400 - 3600), "add")
                self.group_participants(group, self.t_start + rng.uniform(3600, cfg.days * 86400 - 3600), "remove")

    def group_meta(self, group: Group) -> dict[str, Any]:
        owner = self.inst.owner_jid
        parts: list[dict[str, Any]] = [{"id": owner, "admin": "superadmin"}]
        for m in group.members:
            parts.append({"id": m.phone[1:] + "@s.whatsapp.net", "admin": None})
        return {
            "id": group.jid,
            "subject": group.subject,
            "owner": owner,
            "addressingMode": "pn",
            "creation": int(self.t_start) - 86400 * 30,
            "desc": "Grupo de clientes",
            "participants": parts,
            "size": len(parts),
            "announce": False,
            "restrict": False,
        }

    def group_participants(self, group: Group, t: float, action: str) -> None:
        if action == "add":
            c = self.new_contact("lid_alt")
            c.busy_until = math.inf
            group.members.append(c)
        elif len(group.members) > 2:
            c = group.members.pop(self.rng.randrange(len(group.members)))
        else:
            return
        if self.rng.random() < 0.5:  # 2.3.6 objects
            part: Any = {"id": c.lid, "phoneNumber": c.phone[1:] + "@s.whatsapp.net", "admin": None}
        else:  # older releases: JID strings
            part = c.phone[1:] + "@s.whatsapp.net"
        data = {"id": group.jid, "author": self.inst.owner_jid, "participants": [part], "action": action}
        self.group_events.append((t, "group-participants.update", data))

    def group_message(self, group: Group, t: float) -> None:
        rng = self.rng
        sec = max(int(t), group.last_t + 1)
        if sec >= self.t_end:
            return
        group.last_t = sec
        outbound = rng.random() < 0.2
        member = rng.choice(group.members)
        kind = "text"
        if rng.random() < 2 * self.cfg.p_media:  # groups share more media
            kind = rng.choices(pl.MEDIA_KINDS, pl.MEDIA_WEIGHTS)[0]
        text = rng.choice(pl.TEXTS_OUT if outbound else pl.TEXTS_IN)
        message, mtype, shown = pl.content(rng, kind, text, sec, group.ephemeral)
        source = rng.choice(("android", "ios", "web"))
        m = Msg(
            id=self.new_id(source),
            chat_jid=group.jid,
            chat_type="group",
            direction="outbound" if outbound else "inbound",
            kind=kind,
            t=sec,
            via="app" if outbound else "customer",
            text=shown,
            message=message,
            message_type=mtype,
            source=source,
            push_name="Você" if outbound else member.name,
            ts_string=rng.random() < self.cfg.p_timestamp_string,
            db_id=pl.cuid(rng),
            status="server_ack" if outbound else "delivery_ack",
        )
        if not outbound:
            if member.mode == "lid_alt":
                m.participant, m.participant_alt = member.lid, member.phone[1:] + "@s.whatsapp.net"
            else:
                m.participant = member.phone[1:] + "@s.whatsapp.net"
        self.messages.append(m)

    def build_calls(self) -> None:
        rng = self.rng
        for t in self.busy_times(self.cfg.calls_per_day):
            c = self.free_contact(t, 0.5)
            if c.mode != "pn":
                c = self.new_contact("pn")
            offered = int(t)
            r = rng.random()
            if r < 0.5:
                accepted: int | None = offered + rng.randint(3, 20)
                ended, outcome = accepted + rng.randint(30, 900), "accepted"  # type: ignore[operator]
            elif r < 0.7:
                accepted, ended, outcome = None, offered + rng.randint(2, 15), "rejected"
            else:
                accepted, ended, outcome = None, offered + rng.randint(30, 45), "missed"
            if ended >= self.t_end:
                continue
            self.calls.append(
                Call(
                    call_id=pl.hex_id(rng, 32),
                    contact=c,
                    jid=c.phone_jid(rng),
                    is_video=rng.random() < 0.15,
                    offered=offered,
                    accepted=accepted,
                    ended=ended,
                    outcome=outcome,
                )
            )

    def build_extras(self) -> None:
        """Connection changes and status@broadcast stories."""
        rng, inst = self.rng, self.inst
        wuid = inst.owner_jid
        name = inst.id.replace("-", " ").title()
        self.extra_events.append((self.t_start + 1, "connection.update", {"instance": inst.id, "state": "connecting",
                                                                         "statusReason": 200}))  # fmt: skip
        self.extra_events.append((self.t_start + 3, "connection.update", {"instance": inst.id, "state": "open",
                                  "statusReason": 200, "wuid": wuid, "profileName": name}))  # fmt: skip
        if self.cfg.days > 1 and not self.live and rng.random() < 0.7:
            t = self.t_start + rng.uniform(86400, self.cfg.days * 86400 - 600)
            self.extra_events.append((t, "connection.update", {"instance": inst.id, "state": "close",
                                                               "statusReason": 428}))  # fmt: skip
            self.extra_events.append((t + 20, "connection.update", {"instance": inst.id, "state": "connecting",
                                                                    "statusReason": 200}))  # fmt: skip
            self.extra_events.append((t + 25, "connection.update", {"instance": inst.id, "state": "open",
                                      "statusReason": 200, "wuid": wuid, "profileName": name}))  # fmt: skip
        for t in self.busy_times(self.cfg.broadcasts_per_day):
            c = self.rng.choice(self.contacts) if self.contacts else self.new_contact("pn")
            sec = int(t)
            m = Msg(
                id=self.new_id("ios"),
                chat_jid="status@broadcast",
                chat_type="broadcast",
                direction="inbound",
                kind="text",
                t=sec,
                via="customer",
                text="promo de hoje",
                message={"conversation": "promo de hoje"},
                source="ios",
                push_name=c.name,
                participant=c.phone[1:] + "@s.whatsapp.net",
                db_id=pl.cuid(rng),
            )
            self.messages.append(m)

    # --- post-pass: what happens to messages afterwards ---------------------------------------------
    def decorate(self) -> None:
        """Acks, edits, revokes and reactions (kept inside each chat's active span)."""
        cfg, rng = self.cfg, self.rng
        for c in self.contacts:
            msgs = c.messages
            closes = sorted(a.t for a in self.actions if a.contact is c and a.action == "resolve")
            for i, m in enumerate(msgs):
                nxt = msgs[i + 1].t if i + 1 < len(msgs) else self.t_end
                later_close = next((x for x in closes if x > m.t), None)
                limit = min(nxt, later_close if later_close is not None else nxt, m.t + 6 * 3600)
                if m.direction == "outbound":
                    self.acks(m)
                room = int(limit) - m.t - 1  # whole seconds strictly inside (m.t, limit)
                if room < 2:
                    continue
                if m.kind == "text" and not m.automated and rng.random() < cfg.p_edit:
                    new_text = (m.text or "") + " (editado)"
                    m.edit = (m.t + rng.randint(1, max(1, min(room, 900) // 2)), new_text)
                elif not m.automated and rng.random() < cfg.p_revoke:
                    m.revoke = (m.t + rng.randint(1, max(1, min(room, 600) // 2)), rng.random() < 0.5)
                if rng.random() < cfg.p_reaction and room >= 4:
                    t1 = m.t + rng.randint(1, room // 2)
                    from_me = m.direction == "inbound"
                    m.reactions.append(
                        (t1, rng.choice(pl.EMOJIS), from_me, self.new_id("ios" if not from_me else "web"))
                    )
                    if rng.random() < 0.15:
                        t2 = rng.randint(t1 + 1, m.t + room)
                        m.reactions.append((t2, "", from_me, self.new_id("ios" if not from_me else "web")))
        for m in self.messages:
            if m.chat_type == "group" and m.direction == "outbound":
                self.acks(m)

    def acks(self, m: Msg) -> None:
        rng = self.rng
        t = float(m.t)
        steps = ["server_ack", "delivery_ack", "read"] if m.via == "api" else ["delivery_ack", "read"]
        if m.kind == "audio":  # voice notes and audio files get PLAYED once listened to
            steps.append("played")
        stop = rng.random()
        if stop < 0.05:
            steps = steps[:1]
        elif stop < 0.2:
            steps = [s for s in steps if s not in ("read", "played")]
        for s in steps:
            if s == "server_ack":
                t += rng.uniform(0.3, 2.0)
            elif s == "delivery_ack":
                t += rng.uniform(0.5, 30.0) if rng.random() < 0.9 else rng.uniform(600, 7200)
            else:
                t += self.lognormal(60, 1.5, 1, 4 * 3600)
            if t >= self.t_end:
                break
            m.acks.append((t, s))
            if RANK[s] > RANK.get(m.status, 0):
                m.status = s

    # --- the whole instance -------------------------------------------------------------------------

    def build_timeline(self) -> None:
        cfg = self.cfg
        starts = [(t, "inbound") for t in self.busy_times(cfg.conversations_per_day)]
        starts += [(t, "outbound") for t in self.busy_times(cfg.conversations_per_day * cfg.outbound_share)
                   if self.in_hours(t)]  # fmt: skip
        starts.sort()
        for t, origin in starts:
            c = self.free_contact(t, 0.35 if origin == "inbound" else 0.8)
            self.conversation(c, max(t, c.last_t + 1.0), origin)
        self.build_groups()
        self.build_calls()
        self.build_extras()
        self.decorate()
