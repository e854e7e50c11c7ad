"""What one simulated instance posts: Evolution webhook ``data`` objects and ops action rows.

:func:`emit` walks the instance's clean timeline (:class:`beazap.simulator.world.InstanceWorld`)
and produces every webhook Evolution would send about it — upserts, ``send.message`` (and its
``messages.upsert`` echo), status acks, edits, revokes, reactions, presence, contacts, groups, calls
and connection changes — as ``(sent_at, event, data)``. The delivery layer wraps them in envelopes.
"""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from typing import Any

from beazap.simulator import payloads as pl
from beazap.simulator.world import STATUS_WIRE, InstanceWorld, Msg


def emit(w: InstanceWorld) -> list[tuple[float, str, Any]]:
    """Every webhook this instance posts, as ``(sent_at, event, data)`` in emission order."""
    out: list[tuple[float, str, Any]] = []
    rng = w.rng
    uuid = w.inst.instance_uuid
    announced: set[int] = set()
    for m in w.messages:
        lag = rng.uniform(0.05, 1.5)
        c = m.contact
        if c is not None and m.direction == "inbound" and rng.random() < 0.25:
            presence = {"id": m.chat_jid, "presences": {m.chat_jid: {"lastKnownPresence": "composing"}}}
            out.append((m.t - rng.uniform(2, 15), "presence.update", presence))
        if m.via == "api":
            out.append((m.t + lag, "send.message", message_data(w, m, "PENDING")))
            if m.echo:
                out.append((m.t + lag + rng.uniform(0.2, 2), "messages.upsert", message_data(w, m, "SERVER_ACK")))
        else:
            status = "DELIVERY_ACK" if m.direction == "inbound" else "SERVER_ACK"
            out.append((m.t + lag, "messages.upsert", message_data(w, m, status)))
        if c is not None and id(c) not in announced and m.direction == "inbound":
            announced.add(id(c))
            entry = {"remoteJid": m.chat_jid, "pushName": c.name, "profilePicUrl": None, "instanceId": uuid}
            out.append((m.t + lag + 0.5, "contacts.upsert", [entry] if rng.random() < 0.8 else entry))
        for t_ack, s in m.acks:
            data = {
                "keyId": m.id,
                "remoteJid": m.chat_jid,
                "fromMe": True,
                "participant": m.participant or m.chat_jid,
                "status": STATUS_WIRE[s],
                "instanceId": uuid,
            }
            if m.via == "api":
                data["messageId"] = m.db_id
            out.append((t_ack, "messages.update", data))
        key = {"remoteJid": m.chat_jid, "fromMe": m.direction == "outbound", "id": m.id}
        if m.participant:
            key["participant"] = m.participant
        if m.edit:
            t_e, new_text = m.edit
            event = "send.message.update" if m.via == "api" and rng.random() < 0.5 else "messages.edited"
            data = {"key": key, "type": "MESSAGE_EDIT", "editedMessage": {"conversation": new_text},
                    "timestampMs": str(t_e * 1000)}  # fmt: skip
            out.append((t_e + 0.2, event, data))
        if m.revoke:
            t_r, also_delete = m.revoke
            out.append((t_r + 0.2, "messages.edited", {"key": key, "type": "REVOKE", "timestampMs": str(t_r * 1000)}))
            if also_delete:
                out.append((t_r + 0.4, "messages.delete", dict(key)))
        for t_x, emoji, from_me, rid in m.reactions:
            out.append((t_x + 0.3, "messages.upsert", reaction_data(w, m, t_x, emoji, from_me, rid)))
    for t, event, data in w.group_events + w.extra_events:
        out.append((t, event, data))
    for call in w.calls:
        statuses = [(call.offered, "offer")]
        if call.outcome == "accepted":
            statuses += [(call.accepted, "accept"), (call.ended, "terminate")]
        elif call.outcome == "rejected":
            statuses.append((call.ended, "reject"))
        else:
            statuses.append((call.ended, "timeout"))
        for t, status in statuses:
            data = {
                "chatId": call.jid,
                "from": call.jid,
                "id": call.call_id,
                "date": pl.iso_utc(float(t)),
                "offline": False,
                "status": status,
                "isVideo": call.is_video,
                "isGroup": False,
            }
            out.append((float(t) + rng.uniform(0.05, 1.0), "call", data))
    out.sort(key=lambda e: e[0])
    return [e for e in out if e[0] < w.t_end + 7200]


def message_data(w: InstanceWorld, m: Msg, status: str) -> dict[str, Any]:
    key: dict[str, Any] = {"remoteJid": m.chat_jid, "fromMe": m.direction == "outbound", "id": m.id}
    if m.participant:
        key["participant"] = m.participant
    if m.participant_alt:
        key["participantAlt"] = m.participant_alt
    if m.alt_jid:
        key["remoteJidAlt"] = m.alt_jid
    if m.addressing:
        key["addressingMode"] = m.addressing
    data: dict[str, Any] = {"key": key, "pushName": m.push_name, "status": status, "message": m.message}
    if m.quoted is not None:
        q = m.quoted
        data["contextInfo"] = {"stanzaId": q.id, "participant": q.chat_jid, "quotedMessage": q.message}
    data["messageType"] = m.message_type
    data["messageTimestamp"] = str(m.t) if m.ts_string else m.t
    data["instanceId"] = w.inst.instance_uuid
    data["source"] = m.source
    return data


def reaction_data(w: InstanceWorld, m: Msg, t: int, emoji: str, from_me: bool, rid: str) -> dict[str, Any]:
    target = {"remoteJid": m.chat_jid, "fromMe": m.direction == "outbound", "id": m.id}
    key: dict[str, Any] = {"remoteJid": m.chat_jid, "fromMe": from_me, "id": rid}
    if m.alt_jid:
        key["remoteJidAlt"] = m.alt_jid
    if m.addressing:
        key["addressingMode"] = m.addressing
    c = m.contact
    return {
        "key": key,
        "pushName": "Você" if from_me else (c.name if c else None),
        "status": "SERVER_ACK" if from_me else "DELIVERY_ACK",
        "message": {"reactionMessage": {"key": target, "text": emoji, "senderTimestampMs": str(t * 1000)}},
        "messageType": "reactionMessage",
        "messageTimestamp": t,
        "instanceId": w.inst.instance_uuid,
        "source": "web" if from_me else "android",
    }


def ops_rows(w: InstanceWorld, conv_of: dict[str, str], extract_lag: float = 2.0) -> list[dict[str, Any]]:
    """Rows for bronze/ops_events; ``conv_of`` maps a contact key + time to its conversation."""
    rows = []
    for a in sorted(w.actions, key=lambda a: (a.t, a.action_id)):
        occurred = datetime.fromtimestamp(a.t, UTC)
        key = a.contact.contact_key
        rows.append(
            {
                "action_id": a.action_id,
                "instance": w.inst.id,
                "conversation_id": conv_of.get(a.action_id),
                "contact_key": key,
                "action": a.action,
                "actor_id": a.actor_id,
                "attendant_id": a.attendant_id,
                "team_id": a.team_id,
                "occurred_at": occurred,
                "extracted_at": occurred + timedelta(seconds=extract_lag),
                "occurred_date": occurred.date(),
                "details": json.dumps(a.details, sort_keys=True, separators=(",", ":")),
            }
        )
    return rows
