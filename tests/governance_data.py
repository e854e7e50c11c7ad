"""A small, deterministic Evolution-shaped scenario for orchestration, retention and erasure tests.

Two tenants (one instance each), a handful of contacts — one of them the erasure subject, known by
its phone in the 9-digit and the old 8-digit form and by a LID — with inbound/outbound texts,
captions, acks, a contacts.upsert, a group message sent by the subject, resolve actions, and
optionally an old day (for retention). Everything personal the scenario wrote is listed in
:class:`Scenario` so tests can grep for it.
"""

from __future__ import annotations

import hashlib
import json
import random
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

import pyarrow as pa

from bronze import schema as B  # noqa: N812
from bronze.tables import ensure_tables
from storage.lake import Lake

SUBJECT_PHONE = "+5511987654321"
SUBJECT_OLD_FORM = "551187654321"  # same contact without the 9th digit
SUBJECT_LID = "204519873310452"
SUBJECT_TEXT = "meu cpf e 123.456.789-00 e moro na rua das flores 42"
INSTANCES = {"loja-centro": "acme", "loja-norte": "globex"}


@dataclass
class Scenario:
    envelopes: list[tuple[datetime, dict[str, Any]]] = field(default_factory=list)
    ops: list[dict[str, Any]] = field(default_factory=list)
    phones: list[str] = field(default_factory=list)  # E.164 of every contact
    texts: list[str] = field(default_factory=list)  # every message text / name written

    def write(self, lake: Lake) -> None:
        """Land the scenario in bronze, one commit per received day (like group commits)."""
        ensure_tables(lake, B.WEBHOOK_EVENTS)
        by_day: dict[Any, list[dict[str, Any]]] = {}
        for n, (received_at, body) in enumerate(self.envelopes):
            payload = json.dumps(body, ensure_ascii=False)
            by_day.setdefault(received_at.date(), []).append(
                {
                    "receipt_id": f"r{n:06d}",
                    "received_at": received_at,
                    "received_date": received_at.date(),
                    "instance": body["instance"],
                    "event": body["event"],
                    "source_ip": "127.0.0.1",
                    "payload": payload,
                    "payload_hash": hashlib.sha256(payload.encode()).hexdigest(),
                }
            )
        for day in sorted(by_day):
            lake.write(B.WEBHOOK_EVENTS, pa.Table.from_pylist(by_day[day], schema=B.WEBHOOK_EVENTS_SCHEMA))
        if self.ops:
            ensure_tables(lake, B.OPS_EVENTS)
            lake.write(B.OPS_EVENTS, pa.Table.from_pylist(self.ops, schema=B.OPS_EVENTS_SCHEMA))


def _message(instance: str, jid: str, mid: str, ts: datetime, *, from_me: bool, text: str, **extra: Any) -> dict:
    key: dict[str, Any] = {"remoteJid": jid, "fromMe": from_me, "id": mid}
    key.update(extra.pop("key_extra", {}))
    message: dict[str, Any] = (
        {"imageMessage": {"caption": text, "mimetype": "image/jpeg"}}
        if extra.pop("image", False)
        else {"conversation": text}
    )
    data = {
        "key": key,
        "pushName": extra.pop("push_name", "Você" if from_me else "Cliente"),
        "status": "SERVER_ACK" if from_me else "DELIVERY_ACK",
        "message": message,
        "messageType": next(iter(message)),
        "messageTimestamp": int(ts.timestamp()),
        "source": "android",
    }
    data.update(extra)
    return {
        "event": "messages.upsert",
        "instance": instance,
        "data": data,
        "date_time": ts.strftime("%Y-%m-%dT%H:%M:%S.000Z"),
        "sender": "5511940001111@s.whatsapp.net",
        "server_url": "https://evo.example.com",
        "apikey": None,
    }


def build(
    seed: int = 7, *, days: int = 3, contacts: int = 6, now: datetime | None = None, old_days: int = 0
) -> Scenario:
    """The scenario: ``days`` recent days (ending yesterday) plus one day ``old_days`` ago when set."""
    rnd = random.Random(seed)
    now = (now or datetime.now(UTC)).replace(microsecond=0)
    sc = Scenario()
    others = [f"+55219{rnd.randint(10_000_000, 99_999_999)}" for _ in range(contacts - 1)]
    sc.phones = [SUBJECT_PHONE, *others]
    day_starts = [now - timedelta(days=d) for d in range(days, 0, -1)]
    if old_days:
        day_starts.insert(0, now - timedelta(days=old_days))
    mid = 0
    for day_start in day_starts:
        base = day_start.replace(hour=13, minute=0, second=0)
        for c, phone in enumerate(sc.phones):
            instance = list(INSTANCES)[c % 2] if phone != SUBJECT_PHONE else "loja-centro"
            digits = phone.lstrip("+")
            # The subject writes once with the old 8-digit form and once as a LID.
            jid = f"{digits}@s.whatsapp.net"
            if phone == SUBJECT_PHONE and day_start.day % 2 == 0:
                jid = f"{SUBJECT_OLD_FORM}@s.whatsapp.net"
            t = base + timedelta(minutes=10 * c)
            text_in = SUBJECT_TEXT if phone == SUBJECT_PHONE else f"pedido {rnd.randint(1000, 9999)} atrasado"
            name = "Mariana Subject" if phone == SUBJECT_PHONE else f"Cliente {c}"
            mid += 1
            sc.envelopes.append(
                (t, _message(instance, jid, f"M{mid:06d}", t, from_me=False, text=text_in, push_name=name))
            )
            sc.texts += [text_in, name]
            reply = f"ola {name}, vamos verificar"
            mid += 1
            t2 = t + timedelta(minutes=3)
            sc.envelopes.append((t2, _message(instance, jid, f"M{mid:06d}", t2, from_me=True, text=reply)))
            sc.texts.append(reply)
            if phone == SUBJECT_PHONE:
                # A photo through the LID, with the phone as remoteJidAlt.
                mid += 1
                t3 = t + timedelta(minutes=5)
                sc.envelopes.append(
                    (
                        t3,
                        _message(
                            instance,
                            f"{SUBJECT_LID}@lid",
                            f"M{mid:06d}",
                            t3,
                            from_me=False,
                            text="foto do documento da Mariana",
                            image=True,
                            push_name=name,
                            key_extra={"remoteJidAlt": f"{digits}@s.whatsapp.net", "addressingMode": "lid"},
                        ),
                    )
                )
                sc.texts.append("foto do documento da Mariana")
            sc.ops.append(
                {
                    "action_id": f"A{mid:06d}",
                    "instance": instance,
                    "conversation_id": None,
                    "contact_key": phone,
                    "action": "resolve",
                    "actor_id": "att-1",
                    "attendant_id": "att-1",
                    "team_id": "team-1",
                    "occurred_at": t + timedelta(minutes=30),
                    "extracted_at": t + timedelta(minutes=31),
                    "occurred_date": (t + timedelta(minutes=30)).date(),
                    "details": None,
                }
            )
        # A contacts.upsert with the subject's name and a group message the subject sent.
        t = base + timedelta(hours=2)
        sc.envelopes.append(
            (
                t,
                {
                    "event": "contacts.upsert",
                    "instance": "loja-centro",
                    "data": [
                        {"remoteJid": f"{SUBJECT_PHONE.lstrip('+')}@s.whatsapp.net", "pushName": "Mariana Subject"}
                    ],
                    "date_time": t.strftime("%Y-%m-%dT%H:%M:%S.000Z"),
                    "sender": "5511940001111@s.whatsapp.net",
                    "apikey": None,
                },
            )
        )
        mid += 1
        group_text = "oi grupo, aqui e a Mariana"
        sc.envelopes.append(
            (
                t,
                _message(
                    "loja-centro",
                    "120363025246125486@g.us",
                    f"M{mid:06d}",
                    t,
                    from_me=False,
                    text=group_text,
                    push_name="Mariana Subject",
                    key_extra={"participant": f"{SUBJECT_PHONE.lstrip('+')}@s.whatsapp.net"},
                ),
            )
        )
        sc.texts.append(group_text)
    # Arrival order: by receipt time, as the receiver would have written them.
    sc.envelopes.sort(key=lambda e: e[0])
    return sc
