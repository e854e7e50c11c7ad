"""Silver table contracts: names, Arrow schemas, keys and partitioning.

This module is the contract between silver (which writes these tables) and gold, the API and
Dagster (which read them). Column meanings are documented in ``docs/silver.md``.
All timestamps are UTC; ``*_date``/``*_month`` partition columns are UTC too (gold buckets by the
instance time zone itself).
"""

from __future__ import annotations

import pyarrow as pa

TS = pa.timestamp("us", tz="UTC")

MESSAGES = "silver/messages"
MESSAGE_EVENTS = "silver/message_events"
CONVERSATIONS = "silver/conversations"
CONTACTS = "silver/contacts"
GROUPS = "silver/groups"
GROUP_PARTICIPANTS = "silver/group_participants"
CALLS = "silver/calls"
CONNECTION_EVENTS = "silver/connection_events"
OPS_EVENTS = "silver/ops_events"
REJECTS = "silver/rejects"

# Message status ladder (outbound); the latest wins and never goes backwards.
STATUS_RANK = {"error": 0, "pending": 1, "server_ack": 2, "delivery_ack": 3, "read": 4, "played": 5}
KINDS = ("text", "image", "audio", "video", "document", "sticker", "location", "contact", "reaction", "poll", "other")

REACTIONS_TYPE = pa.list_(pa.struct([("actor_key", pa.string()), ("emoji", pa.string()), ("reacted_at", TS)]))

MESSAGES_SCHEMA = pa.schema(
    [
        ("instance_id", pa.string()),
        ("message_id", pa.string()),  # key.id — unique with instance_id
        ("chat_jid", pa.string()),  # key.remoteJid as received (phone JID, LID or group)
        ("chat_type", pa.string()),  # direct | group
        ("contact_key", pa.string()),  # E.164 phone when known, else the LID JID (direct chats)
        ("contact_phone", pa.string()),  # E.164 or null
        ("contact_lid", pa.string()),  # LID JID or null
        ("participant_key", pa.string()),  # sender inside a group (E.164 or LID), null for direct
        ("direction", pa.string()),  # inbound | outbound
        ("kind", pa.string()),  # see KINDS
        ("text", pa.string()),  # latest text (after edits), caption for media
        ("original_text", pa.string()),  # text before the first edit (null when never edited)
        ("media_mimetype", pa.string()),
        ("media_size", pa.int64()),
        ("media_seconds", pa.int32()),
        ("quoted_message_id", pa.string()),
        ("event_at", TS),  # messageTimestamp (WhatsApp's event time)
        ("event_month", pa.string()),  # 'YYYY-MM' of event_at (partition)
        ("first_received_at", TS),
        ("last_received_at", TS),
        ("status", pa.string()),  # pending|server_ack|delivery_ack|read|played|error (latest)
        ("edited", pa.bool_()),
        ("revoked", pa.bool_()),
        ("reaction_count", pa.int32()),  # current reactions on this message
        ("last_reaction", pa.string()),
        ("sender_attendant_id", pa.string()),  # attendant who sent it through BeaZap, when known
        ("automated", pa.bool_()),  # auto-reply/bot: never stops a clock
        ("source", pa.string()),  # android|ios|web|desktop|unknown (Evolution's guess)
        ("via", pa.string()),  # app (messages.upsert fromMe) | api (send.message) | customer
        ("conversation_id", pa.string()),  # direct chats: the conversation it belongs to
        ("payload_hash", pa.string()),  # hash of the bronze payload that set the content
        # --- added by silver (additive) ---
        ("edited_at", TS),  # time of the latest edit (null when never edited)
        ("reactions", REACTIONS_TYPE),  # latest reaction per actor ('' emoji = removed)
    ]
)
MESSAGES_KEY = ("instance_id", "message_id")
MESSAGES_PARTITIONS = ["event_month"]

MESSAGE_EVENTS_SCHEMA = pa.schema(
    [
        ("instance_id", pa.string()),
        ("message_id", pa.string()),  # the message the event targets
        ("event_type", pa.string()),  # status | edit | revoke | reaction | delete
        ("status", pa.string()),  # for status events
        ("text", pa.string()),  # new text (edit) or emoji (reaction; '' = removed)
        ("actor_key", pa.string()),  # who reacted / edited, when known
        ("event_at", TS),  # event time when the payload has one, else received_at
        ("received_at", TS),
        ("receipt_id", pa.string()),  # bronze receipt
        ("event_month", pa.string()),
    ]
)
MESSAGE_EVENTS_KEY = ("instance_id", "receipt_id", "message_id", "event_type")
MESSAGE_EVENTS_PARTITIONS = ["event_month"]

CONVERSATIONS_SCHEMA = pa.schema(
    [
        ("conversation_id", pa.string()),  # core.identity.conversation_id(instance, contact, opening msg)
        ("instance_id", pa.string()),
        ("contact_key", pa.string()),
        ("chat_jid", pa.string()),  # latest chat JID seen for the contact
        ("origin", pa.string()),  # inbound | outbound
        ("opening_message_id", pa.string()),
        ("opened_at", TS),
        ("first_response_at", TS),  # first human outbound after opened_at (inbound origin only)
        ("first_response_message_id", pa.string()),
        ("first_responder_id", pa.string()),  # attendant id or 'unattributed'
        ("last_message_at", TS),
        ("last_inbound_at", TS),
        ("status", pa.string()),  # open | resolved | expired
        ("resolved_at", TS),
        ("resolved_by", pa.string()),
        ("expired_at", TS),  # = last_message_at + timeout when it expired
        ("closed_at", TS),  # resolved_at, or last message time when expired
        ("first_assigned_at", TS),
        ("assignee_id", pa.string()),  # at resolution (or current while open)
        ("team_id", pa.string()),  # team of the assignee at that moment
        ("inbound_count", pa.int32()),
        ("outbound_count", pa.int32()),
        ("previous_conversation_id", pa.string()),
        ("is_reopen", pa.bool_()),  # opened within the reopen window after the previous resolved
        ("reopened", pa.bool_()),  # a later conversation reopened this one
        ("opened_month", pa.string()),  # partition
    ]
)
CONVERSATIONS_KEY = ("conversation_id",)
CONVERSATIONS_PARTITIONS = ["opened_month"]

CONTACTS_SCHEMA = pa.schema(
    [
        ("instance_id", pa.string()),
        ("contact_key", pa.string()),
        ("phone_e164", pa.string()),
        ("lid", pa.string()),
        ("push_name", pa.string()),
        ("first_seen_at", TS),
        ("last_seen_at", TS),
        ("push_name_at", TS),  # added: when push_name was seen (latest wins)
    ]
)
CONTACTS_KEY = ("instance_id", "contact_key")

GROUPS_SCHEMA = pa.schema(
    [
        ("instance_id", pa.string()),
        ("group_jid", pa.string()),
        ("subject", pa.string()),
        ("owner_key", pa.string()),
        ("description", pa.string()),
        ("created_at", TS),
        ("size", pa.int32()),
        ("updated_at", TS),  # received_at of the latest metadata
    ]
)
GROUPS_KEY = ("instance_id", "group_jid")

GROUP_PARTICIPANTS_SCHEMA = pa.schema(
    [
        ("instance_id", pa.string()),
        ("group_jid", pa.string()),
        ("participant_key", pa.string()),  # E.164 or LID
        ("action", pa.string()),  # add | remove | promote | demote | modify | snapshot
        ("admin", pa.string()),
        ("author_key", pa.string()),
        ("event_at", TS),
        ("receipt_id", pa.string()),
    ]
)
GROUP_PARTICIPANTS_KEY = ("instance_id", "receipt_id", "group_jid", "participant_key")

CALLS_SCHEMA = pa.schema(
    [
        ("instance_id", pa.string()),
        ("call_id", pa.string()),
        ("chat_jid", pa.string()),
        ("contact_key", pa.string()),
        ("is_video", pa.bool_()),
        ("is_group", pa.bool_()),
        ("group_jid", pa.string()),
        ("offered_at", TS),
        ("accepted_at", TS),
        ("ended_at", TS),
        ("outcome", pa.string()),  # accepted | rejected | missed | offered (still ringing)
        ("last_status", pa.string()),
        ("event_month", pa.string()),
    ]
)
CALLS_KEY = ("instance_id", "call_id")

CONNECTION_EVENTS_SCHEMA = pa.schema(
    [
        ("instance_id", pa.string()),
        ("state", pa.string()),  # open | connecting | close | refused
        ("status_reason", pa.int32()),
        ("wuid", pa.string()),
        ("received_at", TS),  # no trustworthy event time in the payload
        ("receipt_id", pa.string()),
    ]
)
CONNECTION_EVENTS_KEY = ("instance_id", "receipt_id")

OPS_EVENTS_SCHEMA = pa.schema(
    [
        ("action_id", pa.string()),
        ("instance_id", pa.string()),
        ("conversation_id", pa.string()),
        ("contact_key", pa.string()),
        ("action", pa.string()),
        ("actor_id", pa.string()),
        ("attendant_id", pa.string()),
        ("team_id", pa.string()),
        ("occurred_at", TS),
        ("details", pa.string()),  # added: the action's details JSON, as extracted
    ]
)
OPS_EVENTS_KEY = ("action_id",)

REJECTS_SCHEMA = pa.schema(
    [
        ("receipt_id", pa.string()),
        ("instance_id", pa.string()),
        ("event", pa.string()),
        ("reason", pa.string()),
        ("received_at", TS),
    ]
)
REJECTS_KEY = ("receipt_id", "reason")
