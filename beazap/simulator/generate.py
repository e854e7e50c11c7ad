"""``simulate(config)``: people, per-instance worlds, deliveries and the ground truth.

Determinism: every random choice comes from ``random.Random`` streams seeded by strings derived
from ``config.seed`` (Python seeds strings with SHA-512, independent of ``PYTHONHASHSEED``), one
stream per instance, so the same config gives byte-identical deliveries and ground truth.
"""

from __future__ import annotations

import random
import uuid
from collections import Counter
from datetime import UTC, datetime
from typing import Any
from zoneinfo import ZoneInfo

from beazap.simulator import payloads as pl
from beazap.simulator import webhooks
from beazap.simulator.config import SimulationConfig
from beazap.simulator.model import Attendant, Delivery, SimInstance, Simulation, Team
from beazap.simulator.truth import (
    GroundTruth,
    TLAction,
    TLMessage,
    TrueCall,
    TrueConversation,
    TrueMessage,
    sessionize,
)
from beazap.simulator.world import InstanceWorld

INSTANCE_NAMES = ("loja", "clinica", "suporte", "vendas", "delivery", "escola", "imobiliaria", "oficina")
TEAM_NAMES = ("atendimento", "financeiro", "vendas", "suporte", "logistica")
ATTENDANT_NAMES = ("Ana", "Bruno", "Carla", "Davi", "Elisa", "Fábio", "Gabi", "Heitor", "Iara", "Jonas")
SESSION_ACTIONS = ("assign", "transfer", "unassign", "resolve", "reopen")


def build_people(cfg: SimulationConfig) -> tuple[list[SimInstance], list[Team], list[Attendant]]:
    """Accounts own instances; each instance has its teams and attendants (``team-…``, ``att-…``)."""
    rng = random.Random(f"beazap-sim:{cfg.seed}:people")
    instances: list[SimInstance] = []
    teams: list[Team] = []
    attendants: list[Attendant] = []
    for i in range(cfg.instances):
        account = f"acct-{i // max(1, cfg.instances_per_account) + 1:02d}"
        name = f"{INSTANCE_NAMES[i % len(INSTANCE_NAMES)]}-{i + 1:02d}"
        owner = "55119" + "4" + "".join(rng.choice("0123456789") for _ in range(7))
        instances.append(
            SimInstance(
                id=name,
                account_id=account,
                timezone=cfg.timezones[i % len(cfg.timezones)],
                token="whk_sim_" + "".join(rng.choice("0123456789abcdef") for _ in range(32)),
                instance_uuid=str(uuid.UUID(int=rng.getrandbits(128), version=4)),
                owner_jid=owner + "@s.whatsapp.net",
                server_url=f"https://evo{i % 2 + 1}.example.com",
                by_events=rng.random() < cfg.p_by_events_instance,
                auto_greeting=rng.random() < cfg.p_auto_greeting_instance,
                expose_apikey=rng.random() < 0.2,
            )
        )
        short = f"{i + 1:02d}"
        for k in range(cfg.teams_per_instance):
            tname = TEAM_NAMES[k % len(TEAM_NAMES)]
            team = Team(id=f"team-{short}-{tname}", instance_id=name, account_id=account, name=tname.title())
            teams.append(team)
            for j in range(cfg.attendants_per_team):
                n = k * cfg.attendants_per_team + j
                attendants.append(
                    Attendant(
                        id=f"att-{short}-{n + 1:02d}",
                        instance_id=name,
                        account_id=account,
                        team_id=team.id,
                        name=f"{ATTENDANT_NAMES[n % len(ATTENDANT_NAMES)]} {n + 1}",
                    )
                )
    return instances, teams, attendants


def _truth_for(
    world: InstanceWorld, team_of: dict[str, str], as_of: float
) -> tuple[list[TrueConversation], list[TrueMessage], list[TrueCall], dict[str, str]]:
    msgs = [m for m in world.messages if m.chat_type != "broadcast"]
    conversations: list[TrueConversation] = []
    attribution: dict[str, tuple[str, str | None, str | None]] = {}
    action_conv: dict[str, str] = {}
    actions_by_contact: dict[int, list[TLAction]] = {}
    for a in world.actions:
        if a.action != "message_sent":  # route is mapped to its conversation; only SESSION_ACTIONS change state
            actions_by_contact.setdefault(id(a.contact), []).append(
                TLAction(a.t, a.action_id, a.action, a.actor_id, a.attendant_id, a.team_id)
            )
    for c in world.contacts:
        if not c.messages:
            continue
        timeline: list[TLMessage | TLAction] = [
            TLMessage(float(m.t), m.id, m.direction, m.automated, m.sender if not m.automated else None, m.chat_jid)
            for m in c.messages
        ]
        timeline.extend(actions_by_contact.get(id(c), []))
        convs, attr, acts = sessionize(
            world.inst.id, c.contact_key, timeline,
            timeout_s=world.timeout, reopen_s=world.reopen, abandon_s=world.abandon, as_of=as_of, team_of=team_of,
        )  # fmt: skip
        conversations.extend(convs)
        attribution.update(attr)
        action_conv.update(acts)
    for a in world.actions:  # message_sent belongs to its message's conversation
        if a.action == "message_sent":
            entry = attribution.get(a.details.get("message_id", ""))
            if entry:
                action_conv[a.action_id] = entry[0]
    truth_msgs: list[TrueMessage] = []
    for m in msgs:
        c = m.contact
        cid, who, team = attribution.get(m.id, (None, None, None))
        if m.chat_type == "group" and m.direction == "outbound" and not m.automated:
            who, team = (m.sender or "unattributed"), team_of.get(m.sender or "")
        current: dict[bool, str] = {}
        for _, emoji, from_me, _ in sorted(m.reactions):
            if emoji:
                current[from_me] = emoji
            else:
                current.pop(from_me, None)
        last_reaction = None
        for _t, emoji, from_me, _ in sorted(m.reactions):
            if current.get(from_me) == emoji and emoji:
                last_reaction = emoji
        truth_msgs.append(
            TrueMessage(
                instance_id=world.inst.id,
                message_id=m.id,
                direction=m.direction,
                kind=m.kind,
                chat_type=m.chat_type,
                event_at=datetime.fromtimestamp(m.t, UTC),
                automated=m.automated,
                sender_attendant_id=m.sender if m.via == "api" and not m.automated else None,
                revoked=m.revoke is not None,
                edited=m.edit is not None,
                status=m.status,
                contact_key=c.contact_key if c is not None else None,
                conversation_id=cid,
                via=m.via,
                attendant_id=who,
                team_id=team,
                text=m.edit[1] if m.edit else m.text,
                reaction_count=len(current),
                last_reaction=last_reaction,
            )
        )
    calls = [
        TrueCall(
            instance_id=world.inst.id,
            call_id=call.call_id,
            chat_jid=call.jid,
            contact_key=call.contact.phone,
            is_video=call.is_video,
            is_group=False,
            offered_at=datetime.fromtimestamp(call.offered, UTC),
            accepted_at=datetime.fromtimestamp(call.accepted, UTC) if call.accepted is not None else None,
            ended_at=datetime.fromtimestamp(call.ended, UTC),
            outcome=call.outcome,
        )
        for call in world.calls
    ]
    return conversations, truth_msgs, calls, action_conv


def _volumes(truth: GroundTruth, tz_of: dict[str, ZoneInfo]) -> None:
    daily: Counter[tuple[str, str, str, str, str]] = Counter()
    hourly: Counter[tuple[str, str, int, str, str]] = Counter()
    for m in truth.messages:
        lt = m.event_at.astimezone(tz_of[m.instance_id])
        daily[(m.instance_id, lt.date().isoformat(), m.direction, m.kind, m.chat_type)] += 1
        hourly[(m.instance_id, lt.date().isoformat(), lt.hour, m.direction, m.chat_type)] += 1
    truth.daily_volume = [
        {"instance_id": k[0], "day": k[1], "direction": k[2], "kind": k[3], "chat_type": k[4], "messages": n}
        for k, n in sorted(daily.items())
    ]
    truth.hourly_volume = [
        {"instance_id": k[0], "day": k[1], "hour": k[2], "direction": k[3], "chat_type": k[4], "messages": n}
        for k, n in sorted(hourly.items())
    ]
    _activity(truth, tz_of)
    conv: dict[tuple[str, str], Counter[str]] = {}
    for c in truth.conversations:
        tz = tz_of[c.instance_id]

        def bump(when: datetime | None, what: str, inst: str = c.instance_id, tz: ZoneInfo = tz) -> None:
            if when is not None:
                conv.setdefault((inst, when.astimezone(tz).date().isoformat()), Counter())[what] += 1

        bump(c.opened_at, "opened")
        bump(c.opened_at, "opened_inbound" if c.origin == "inbound" else "opened_outbound")
        bump(c.resolved_at, "resolved")
        bump(c.expired_at, "abandoned" if c.status == "abandoned" else "expired")
        if c.is_reopen:
            bump(c.opened_at, "reopened")
    truth.daily_conversations = [
        {
            "instance_id": k[0],
            "day": k[1],
            **{
                w: v.get(w, 0)
                for w in ("opened", "opened_inbound", "opened_outbound", "resolved", "expired", "abandoned", "reopened")
            },
        }
        for k, v in sorted(conv.items())
    ]


def _activity(truth: GroundTruth, tz_of: dict[str, ZoneInfo]) -> None:
    """Per instance × local day: edited, revoked, reactions and messages per kind; and the direct-chat
    contacts with messages, new (their first day ever in the instance) or returning."""
    activity: dict[tuple[str, str], Counter[str]] = {}
    seen: dict[tuple[str, str], set[str]] = {}
    for m in truth.messages:
        key = (m.instance_id, m.event_at.astimezone(tz_of[m.instance_id]).date().isoformat())
        counts = activity.setdefault(key, Counter())
        counts["edited"] += m.edited
        counts["revoked"] += m.revoked
        counts["reactions"] += m.reaction_count
        counts[m.kind] += 1
        if m.chat_type == "direct" and m.contact_key is not None:
            seen.setdefault(key, set()).add(m.contact_key)
    truth.daily_activity = [{"instance_id": k[0], "day": k[1], **v} for k, v in sorted(activity.items())]
    first: dict[tuple[str, str], str] = {}
    for (inst, day), keys in sorted(seen.items()):
        for contact in keys:
            first.setdefault((inst, contact), day)
    truth.daily_contacts = []
    for (inst, day), keys in sorted(seen.items()):
        new = sum(first[(inst, c)] == day for c in keys)
        truth.daily_contacts.append(
            {"instance_id": inst, "day": day, "contacts": len(keys), "new": new, "returning": len(keys) - new}
        )


def _deliveries(cfg: SimulationConfig, world: InstanceWorld) -> list[Delivery]:
    rng = random.Random(f"beazap-sim:{cfg.seed}:{world.inst.id}:delivery{_salt(cfg)}")
    inst = world.inst
    server_tz = world.tz
    out: list[Delivery] = []
    for sent_at, event, data in webhooks.emit(world):
        body = pl.envelope(
            event, inst.id, data, sent_at=sent_at, server_tz=server_tz, sender=inst.owner_jid,
            server_url=inst.server_url, apikey=inst.token if inst.expose_apikey else None,
        )  # fmt: skip
        suffix = pl.event_suffix(event) if inst.by_events else ""
        received = sent_at + rng.uniform(0.02, 0.4)
        r = rng.random()
        if world.live:  # a live replay posts on time (no delivery delayed for minutes or days)
            pass
        elif r < cfg.p_late:
            received += rng.uniform(1800, 3 * 86400)
        elif r < cfg.p_late + cfg.p_out_of_order:
            received += rng.uniform(2, 600)
        out.append(Delivery(inst.id, event, body, datetime.fromtimestamp(received, UTC), suffix))
        if rng.random() < cfg.p_duplicate:
            soon = rng.random() < 0.5 or world.live  # a live replay ends with its window
            again = received + (rng.uniform(0.01, 2) if soon else rng.uniform(5, 1800))
            out.append(Delivery(inst.id, event, body, datetime.fromtimestamp(again, UTC), suffix))
    return out


def _salt(cfg: SimulationConfig) -> str:
    """Extra seed text of a live run's traffic streams (empty otherwise: seeds stay as they were)."""
    return "" if cfg.window is None else f":live:{cfg.window[0]:.3f}"


def simulate(cfg: SimulationConfig | None = None) -> Simulation:
    """Generate one deterministic world of Evolution traffic with its ground truth."""
    cfg = cfg or SimulationConfig()
    instances, teams, attendants = build_people(cfg)
    deliveries: list[Delivery] = []
    worlds: list[InstanceWorld] = []
    for inst in instances:
        world = InstanceWorld(
            cfg,
            inst,
            [t for t in teams if t.instance_id == inst.id],
            [a for a in attendants if a.instance_id == inst.id],
            random.Random(f"beazap-sim:{cfg.seed}:{inst.id}:world{_salt(cfg)}"),
        )
        world.build_timeline()
        worlds.append(world)
        deliveries.extend(_deliveries(cfg, world))
    deliveries.sort(key=lambda d: (d.received_at, d.instance))
    for i, d in enumerate(deliveries):
        d.seq = i
    sim = Simulation(
        config=cfg,
        instances=instances,
        teams=teams,
        attendants=attendants,
        deliveries=deliveries,
        ops_events=[],
        ground_truth=GroundTruth(config=cfg.to_dict()),
        worlds=worlds,
    )
    build_truth(sim)
    return sim


def build_truth(sim: Simulation) -> None:
    """(Re)compute ``sim.ground_truth`` and ``sim.ops_events`` from its worlds' timelines — again after a
    live replay changed the actions to what was actually done (:func:`beazap.simulator.live.replay`)."""
    cfg, worlds, deliveries = sim.config, sim.worlds, sim.deliveries
    team_of = {a.id: a.team_id for a in sim.attendants}
    truth = GroundTruth(config=cfg.to_dict())
    ops_rows: list[dict[str, Any]] = []
    tz_of = {w.inst.id: w.tz for w in worlds}
    # the as-of silver uses for a replay of this bronze: the latest receipt, message or action time
    latest = [d.received_at.timestamp() for d in deliveries]
    latest += [m.t for w in worlds for m in w.messages] + [a.t for w in worlds for a in w.actions]
    as_of = max(latest, default=datetime.fromisoformat(cfg.start.isoformat()).replace(tzinfo=UTC).timestamp())
    truth.as_of = datetime.fromtimestamp(as_of, UTC)
    for world in worlds:
        convs, msgs, calls, action_conv = _truth_for(world, team_of, as_of)
        truth.conversations.extend(convs)
        truth.messages.extend(msgs)
        truth.calls.extend(calls)
        ops_rows.extend(webhooks.ops_rows(world, action_conv))
    ops_rows.sort(key=lambda r: (r["occurred_at"], r["action_id"]))
    _volumes(truth, tz_of)
    sim.ops_events = ops_rows
    sim.ground_truth = truth
    sim.stats = {
        "deliveries": len(deliveries),
        "distinct_payloads": len({id(d.body) for d in deliveries}),
        "ops_events": len(ops_rows),
        "conversations": len(truth.conversations),
        "messages": len(truth.messages),
        "calls": len(truth.calls),
    }
