"""Small silver and ops-store fixtures for the LLM tests (tests/test_llm_*.py)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import pyarrow as pa
from sqlalchemy import Engine, insert, update

from core.identity import conversation_id
from silver.schema import (
    CONVERSATIONS,
    CONVERSATIONS_PARTITIONS,
    CONVERSATIONS_SCHEMA,
    MESSAGES,
    MESSAGES_PARTITIONS,
    MESSAGES_SCHEMA,
)
from storage.instances import add_instance
from storage.lake import Lake
from storage.tables import attendants as attendants_table
from storage.tables import conversations, instances, messages, teams

T0 = datetime(2026, 3, 2, 12, 0, tzinfo=UTC)

# Identifiers planted in customer messages: none of them may reach the LLM server.
PLANTED = {
    "phone": "+55 (11) 98765-4321",
    "phone_plain": "11987654321",
    "email": "maria.souza@example.com.br",
    "cpf": "123.456.789-09",
    "cnpj": "12.345.678/0001-95",
}


def _table(rows: list[dict[str, Any]], schema: pa.Schema) -> pa.Table:
    return pa.Table.from_pylist([{f.name: r.get(f.name) for f in schema} for r in rows], schema=schema)


def conversation(
    instance_id: str,
    n: int,
    texts: list[tuple[str, str]],
    *,
    status: str = "resolved",
    contact: str | None = None,
    start: datetime = T0,
) -> tuple[dict[str, Any], list[dict[str, Any]]]:
    """One silver conversation and its messages; ``texts`` is [(direction, text), …]."""
    contact = contact or f"+55119{n:08d}"
    first_id = f"m{n}-0"
    cid = conversation_id(instance_id, contact, first_id)
    msgs = []
    for i, (direction, text) in enumerate(texts):
        at = start + timedelta(minutes=n, seconds=30 * i)
        msgs.append(
            {
                "instance_id": instance_id,
                "message_id": f"m{n}-{i}",
                "chat_jid": contact.lstrip("+") + "@s.whatsapp.net",
                "chat_type": "direct",
                "contact_key": contact,
                "direction": direction,
                "kind": "text",
                "text": text,
                "event_at": at,
                "event_month": at.strftime("%Y-%m"),
                "automated": False,
                "conversation_id": cid,
                "edited": False,
                "revoked": False,
            }
        )
    last = msgs[-1]["event_at"]
    conv = {
        "conversation_id": cid,
        "instance_id": instance_id,
        "contact_key": contact,
        "origin": "inbound",
        "opening_message_id": first_id,
        "opened_at": msgs[0]["event_at"],
        "last_message_at": last,
        "status": status,
        "resolved_at": last if status == "resolved" else None,
        "closed_at": last if status != "open" else None,
        "inbound_count": sum(1 for d, _ in texts if d == "inbound"),
        "outbound_count": sum(1 for d, _ in texts if d == "outbound"),
        "opened_month": msgs[0]["event_at"].strftime("%Y-%m"),
        "team_id": "t-support",
    }
    return conv, msgs


def write_silver(lake: Lake, convs: list[dict[str, Any]], msgs: list[dict[str, Any]]) -> None:
    lake.write(
        CONVERSATIONS,
        _table(convs, CONVERSATIONS_SCHEMA),
        mode="overwrite",
        partition_by=CONVERSATIONS_PARTITIONS,
    )
    lake.write(MESSAGES, _table(msgs, MESSAGES_SCHEMA), mode="overwrite", partition_by=MESSAGES_PARTITIONS)


def sample_conversations(instance_id: str, count: int) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    """``count`` closed conversations of varied content (one per topic family), some with PII."""
    scripts = [
        [("inbound", f"Meu boleto veio errado, meu CPF é {PLANTED['cpf']}"), ("outbound", "Vou verificar, um momento")],
        [("inbound", "Cadê minha entrega? O pedido não chegou!"), ("outbound", "O rastreio mostra que sai hoje")],
        [("inbound", f"O app trava no login, me liga no {PLANTED['phone']}"), ("outbound", "Tente atualizar o app")],
        [("inbound", f"Quero cancelar, email {PLANTED['email']}"), ("outbound", "Cancelamento feito, obrigado")],
        [("inbound", f"Muito obrigado, ótimo atendimento! CNPJ {PLANTED['cnpj']}"), ("outbound", "Nós agradecemos")],
        [("inbound", f"meu numero {PLANTED['phone_plain']} nao recebe mensagens"), ("outbound", "Vamos checar")],
    ]
    convs, msgs = [], []
    for n in range(count):
        conv, m = conversation(instance_id, n, scripts[n % len(scripts)] + [("inbound", f"caso {n}")])
        convs.append(conv)
        msgs.extend(m)
    return convs, msgs


def setup_routing_instance(
    engine: Engine,
    instance_id: str = "loja-a",
    account_id: str = "acme",
    *,
    routing: dict[str, Any] | None = None,
    business_hours: dict[str, Any] | None = None,
) -> None:
    """An instance with teams t-support/t-billing/t-night, one attendant each and routing config."""
    add_instance(engine, instance_id, account_id)
    with engine.begin() as conn:
        conn.execute(
            update(instances)
            .where(instances.c.id == instance_id)
            .values(
                routing=routing
                or {
                    "router": "llm",
                    "auto_assign": True,
                    "default_team_id": "t-support",
                    "rules": [{"team_id": "t-billing", "keywords": ["boleto", "fatura"], "urgency": "medium"}],
                },
                business_hours=business_hours,
            )
        )
        for team, name in (("t-support", "Suporte técnico"), ("t-billing", "Financeiro"), ("t-night", "Plantão")):
            conn.execute(insert(teams).values(id=team, instance_id=instance_id, name=name))
            conn.execute(
                insert(attendants_table).values(
                    id=f"a-{team}", instance_id=instance_id, team_id=team, name=f"Agent {team}", capacity=10
                )
            )


def open_conversation(engine: Engine, instance_id: str, n: int, texts: list[str], opened_at: datetime) -> str:
    """An open, unassigned ops-store conversation with inbound ``texts``; returns its id."""
    contact = f"+55119{n:08d}"
    cid = conversation_id(instance_id, contact, f"o{n}-0")
    with engine.begin() as conn:
        conn.execute(
            insert(conversations).values(
                id=cid,
                instance_id=instance_id,
                contact_key=contact,
                chat_jid=contact.lstrip("+") + "@s.whatsapp.net",
                origin="inbound",
                opening_message_id=f"o{n}-0",
                opened_at=opened_at,
                last_message_at=opened_at,
                status="open",
                inbound_count=len(texts),
            )
        )
        for i, text in enumerate(texts):
            conn.execute(
                insert(messages).values(
                    instance_id=instance_id,
                    message_id=f"o{n}-{i}",
                    timestamp=opened_at + timedelta(seconds=i),
                    conversation_id=cid,
                    contact_key=contact,
                    direction="inbound",
                    kind="text",
                    text=text,
                )
            )
    return cid
