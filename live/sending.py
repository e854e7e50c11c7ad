"""Send a message from an attendant through Evolution, at most once per idempotency key.

The ledger row (``outbound_requests``) is claimed before calling Evolution: a replay of a key that
was sent returns the stored answer, a replay while the first call is still running answers 409,
and a different body under the same key is refused. After Evolution accepts, the same transaction
marks the row sent and records a ``message_sent`` action (the attendant, ``automated: false``) so
silver and the live store attribute the message to its sender.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import Engine, insert, select, update

from live.actions import new_action_id
from live.evolution import EvolutionClient, EvolutionError
from live.store_sql import insert_ignore
from storage import ops_repo
from storage.ops_repo import ConflictError, InvalidError, NotFoundError
from storage.tables import actions, attendants, conversations, messages, outbound_requests
from storage.tokens import TenantScope

ClientFactory = Callable[[ops_repo.EvolutionCredentials], EvolutionClient]


@dataclass
class SendResult:
    message_id: str
    conversation_id: str
    replayed: bool
    evolution: dict[str, Any]


def _number(conv: dict[str, Any]) -> str:
    key = conv["contact_key"]
    if key.startswith("+"):
        return key[1:]
    return conv.get("chat_jid") or key  # a LID: Evolution accepts the JID


def send_message(
    engine: Engine,
    scope: TenantScope,
    conversation_id: str,
    *,
    text: str,
    idempotency_key: str,
    attendant_id: str | None,
    client_factory: ClientFactory,
    quoted_message_id: str | None = None,
) -> SendResult:
    """Send ``text`` to the conversation's contact; raises EvolutionError (502), ConflictError (409)."""
    conv = ops_repo.get_conversation(engine, scope, conversation_id)
    instance_id = conv["instance_id"]
    if attendant_id:
        with engine.connect() as conn:
            owner = conn.execute(select(attendants.c.instance_id).where(attendants.c.id == attendant_id)).scalar()
        if owner != instance_id:
            raise NotFoundError(f"attendant not found: {attendant_id}")
    request_hash = hashlib.sha256(
        json.dumps([conversation_id, text, attendant_id, quoted_message_id]).encode()
    ).hexdigest()
    o = outbound_requests
    now = datetime.now(UTC)
    with engine.begin() as conn:
        claimed = conn.execute(
            insert_ignore(conn, o)
            .values(
                instance_id=instance_id,
                idempotency_key=idempotency_key,
                conversation_id=conversation_id,
                attendant_id=attendant_id,
                request_hash=request_hash,
                status="sending",
                created_at=now,
                updated_at=now,
            )
            .returning(o.c.idempotency_key)  # rowcount of ON CONFLICT DO NOTHING is -1 on psycopg
        ).first()
        if claimed is None:
            row = conn.execute(
                select(o).where(o.c.instance_id == instance_id, o.c.idempotency_key == idempotency_key)
            ).one()
            if row.request_hash != request_hash:
                raise InvalidError("this Idempotency-Key was already used for a different message")
            if row.status == "sent":
                return SendResult(row.message_id, conversation_id, True, row.response or {})
            if row.status == "sending":
                raise ConflictError("a send with this Idempotency-Key is in progress")
            retaken = conn.execute(
                update(o)
                .where(o.c.instance_id == instance_id, o.c.idempotency_key == idempotency_key, o.c.status == "failed")
                .values(status="sending", error=None, updated_at=now)
            ).rowcount
            if not retaken:
                raise ConflictError("a send with this Idempotency-Key is in progress")

    credentials = ops_repo.evolution_credentials(engine, scope, instance_id)
    try:
        with client_factory(credentials) as client:
            answer = client.send_text(instance_id, _number(conv), text, quoted_message_id=quoted_message_id)
        key = answer.get("key") if isinstance(answer, dict) else None
        message_id = key.get("id") if isinstance(key, dict) else None
        if not isinstance(message_id, str):
            raise EvolutionError(None, "Evolution answered without key.id")
    except EvolutionError as exc:
        with engine.begin() as conn:
            conn.execute(
                update(o)
                .where(o.c.instance_id == instance_id, o.c.idempotency_key == idempotency_key)
                .values(status="failed", error=exc.reason[:1000], updated_at=datetime.now(UTC))
            )
        raise

    sent_at = datetime.now(UTC)
    with engine.begin() as conn:
        conn.execute(
            update(o)
            .where(o.c.instance_id == instance_id, o.c.idempotency_key == idempotency_key)
            .values(status="sent", message_id=message_id, response=answer, updated_at=sent_at)
        )
        applied = conn.execute(
            update(messages)
            .where(messages.c.instance_id == instance_id, messages.c.message_id == message_id)
            .values(sender_attendant_id=attendant_id, automated=False)
        ).rowcount
        if applied and attendant_id:
            conn.execute(
                update(conversations)
                .where(
                    conversations.c.id == conversation_id,
                    conversations.c.first_response_message_id == message_id,
                )
                .values(first_responder_id=attendant_id)
            )
        conn.execute(
            insert(actions).values(
                id=new_action_id(),
                instance_id=instance_id,
                # NULL until applied to the message (the projector does it when the webhook lands).
                conversation_id=conversation_id if applied else None,
                contact_key=conv["contact_key"],
                action="message_sent",
                actor_id=attendant_id or "api",
                attendant_id=attendant_id,
                team_id=conv["team_id"],
                message_id=message_id,
                occurred_at=sent_at,
                details={"message_id": message_id, "automated": False, "conversation_id": conversation_id},
                source="store",
            )
        )
    return SendResult(message_id, conversation_id, False, answer)
