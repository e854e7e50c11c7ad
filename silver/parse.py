"""Parse raw bronze webhooks into normalized *partial* rows, entirely inside DuckDB.

Input: a DuckDB relation named ``src`` with the bronze ``webhook_events`` columns. Each Evolution
payload is parsed once with ``json_transform`` into a typed struct (the event family decides the
structure), then plain SQL derives the partial rows the fold step combines:

- ``p_msg``: one partial row per (instance, message id) and event that touches a message — content
  (``messages.upsert``, ``send.message``, ``messages.set``), status acks, edits, revokes, reactions;
- ``p_events``: the message history rows (``silver/message_events``);
- ``p_calls``, ``p_groups``, ``p_gp`` (group participants), ``p_conn`` (connection events),
  ``p_contacts`` (contacts.upsert/update names), ``p_rejects``.

Nothing here runs per-row Python; phone normalization is applied later on *distinct* JIDs.
"""

from __future__ import annotations

import json

import duckdb

# --------------------------------------------------------------------------------------------------
# JSON structures for json_transform (unknown keys are ignored; type mismatches give NULL)
# --------------------------------------------------------------------------------------------------
_CTX = {"stanzaId": "VARCHAR"}
_KEY = {"remoteJid": "VARCHAR", "fromMe": "BOOLEAN", "id": "VARCHAR", "participant": "VARCHAR"}
_EDIT_TEXT = {
    "conversation": "VARCHAR",
    "extendedTextMessage": {"text": "VARCHAR"},
    "imageMessage": {"caption": "VARCHAR"},
    "videoMessage": {"caption": "VARCHAR"},
    "documentMessage": {"caption": "VARCHAR"},
}
_PROTOCOL = {
    "key": _KEY,
    "type": "VARCHAR",
    "editedMessage": _EDIT_TEXT,
    "timestampMs": "VARCHAR",
}
_MEDIA = {
    "mimetype": "VARCHAR",
    "caption": "VARCHAR",
    "fileLength": "JSON",
    "seconds": "JSON",
    "contextInfo": _CTX,
}
_CONTENT: dict[str, object] = {
    "conversation": "VARCHAR",
    "extendedTextMessage": {"text": "VARCHAR", "contextInfo": _CTX},
    "imageMessage": _MEDIA,
    "videoMessage": _MEDIA,
    "audioMessage": _MEDIA,
    "documentMessage": _MEDIA,
    "stickerMessage": _MEDIA,
    "locationMessage": "JSON",
    "liveLocationMessage": "JSON",
    "contactMessage": "JSON",
    "contactsArrayMessage": "JSON",
    "pollCreationMessage": "JSON",
    "pollCreationMessageV2": "JSON",
    "pollCreationMessageV3": "JSON",
    "reactionMessage": {"key": _KEY, "text": "VARCHAR", "senderTimestampMs": "VARCHAR"},
    "protocolMessage": _PROTOCOL,
}
_WRAPPERS = (
    "ephemeralMessage",
    "viewOnceMessage",
    "viewOnceMessageV2",
    "viewOnceMessageV2Extension",
    "documentWithCaptionMessage",
    "editedMessage",
)


# Wrappers that can themselves hold a wrapper (e.g. ephemeral → viewOnce → image).
_NESTED = {
    "ephemeralMessage": (
        "viewOnceMessage",
        "viewOnceMessageV2",
        "viewOnceMessageV2Extension",
        "documentWithCaptionMessage",
        "editedMessage",
    )
}


def _content_struct(inner: tuple[str, ...] = _WRAPPERS, depth: int = 3) -> dict[str, object]:
    struct = dict(_CONTENT)
    if depth > 1:
        for wrapper in inner:
            struct[wrapper] = {"message": _content_struct(_NESTED.get(wrapper, ()), depth - 1)}
    return struct


_MESSAGE_DATA = {
    "key": {
        **_KEY,
        "remoteJidAlt": "VARCHAR",
        "participantAlt": "VARCHAR",
        "senderPn": "VARCHAR",
        "senderLid": "VARCHAR",
        "previousRemoteJid": "VARCHAR",
    },
    "pushName": "VARCHAR",
    "status": "VARCHAR",
    "message": _content_struct(),
    "contextInfo": _CTX,
    "messageType": "VARCHAR",
    "messageTimestamp": "VARCHAR",
    "source": "VARCHAR",
}
MESSAGE_STRUCT = json.dumps({"data": _MESSAGE_DATA})
MESSAGE_SET_STRUCT = json.dumps({"data": [_MESSAGE_DATA]})
MESSAGE_SET_OBJ_STRUCT = json.dumps({"data": {"messages": [_MESSAGE_DATA]}})
UPDATE_STRUCT = json.dumps(
    {
        "data": {
            "keyId": "VARCHAR",
            "remoteJid": "VARCHAR",
            "fromMe": "BOOLEAN",
            "participant": "VARCHAR",
            "status": "VARCHAR",
            "messageId": "VARCHAR",
        }
    }
)
EDITED_STRUCT = json.dumps(
    {
        "data": {
            "key": _KEY,
            "type": "VARCHAR",
            "editedMessage": {**_EDIT_TEXT, "message": {"protocolMessage": _PROTOCOL}},
            "timestampMs": "VARCHAR",
            "message": {"protocolMessage": _PROTOCOL},
        }
    }
)
DELETE_STRUCT = json.dumps({"data": {**_KEY, "key": _KEY, "status": "VARCHAR"}})
CALL_STRUCT = json.dumps(
    {
        "data": {
            "id": "VARCHAR",
            "from": "VARCHAR",
            "chatId": "VARCHAR",
            "date": "VARCHAR",
            "status": "VARCHAR",
            "isVideo": "BOOLEAN",
            "isGroup": "BOOLEAN",
            "groupJid": "VARCHAR",
        }
    }
)
CONN_STRUCT = json.dumps({"data": {"state": "VARCHAR", "statusReason": "VARCHAR", "wuid": "VARCHAR"}})
_GROUP = {
    "id": "VARCHAR",
    "subject": "VARCHAR",
    "owner": "VARCHAR",
    "desc": "VARCHAR",
    "creation": "VARCHAR",
    "size": "VARCHAR",
    "participants": [{"id": "VARCHAR", "admin": "VARCHAR", "phoneNumber": "VARCHAR", "lid": "VARCHAR"}],
}
GROUPS_STRUCT = json.dumps({"data": [_GROUP]})
GROUPS_OBJ_STRUCT = json.dumps({"data": _GROUP})
GP_STRUCT = json.dumps({"data": {"id": "VARCHAR", "author": "VARCHAR", "action": "VARCHAR", "participants": ["JSON"]}})
_CONTACT = {"remoteJid": "VARCHAR", "id": "VARCHAR", "pushName": "VARCHAR", "lid": "VARCHAR", "phoneNumber": "VARCHAR"}
CONTACTS_STRUCT = json.dumps({"data": [_CONTACT]})
CONTACTS_OBJ_STRUCT = json.dumps({"data": _CONTACT})

MESSAGE_EVENTS = ("messages.upsert", "send.message")
EDIT_EVENTS = ("messages.edited", "send.message.update", "messages.edit")
STATUS_EVENTS = ("messages.update",)
USED_EVENTS = (
    *MESSAGE_EVENTS,
    "messages.set",
    *EDIT_EVENTS,
    *STATUS_EVENTS,
    "messages.delete",
    "call",
    "connection.update",
    "groups.upsert",
    "groups.update",
    "group-participants.update",
    "contacts.upsert",
    "contacts.update",
)

# --------------------------------------------------------------------------------------------------
# SQL snippets
# --------------------------------------------------------------------------------------------------


def _leaf(expr: str) -> str:
    """The content struct at ``expr`` rebuilt to the leaf type (NULL when ``expr`` is NULL)."""
    fields = ", ".join(f"'{k}': {expr}.{k}" for k in _CONTENT)
    return f"case when {expr} is not null then {{{fields}}} end"


def _unwrap(expr: str) -> str:
    """Peel ephemeral/viewOnce/documentWithCaption/edited wrappers (see ``_NESTED`` for two levels)."""
    level2 = [_leaf(f"{expr}.{w1}.message.{w2}.message") for w1, inner in _NESTED.items() for w2 in inner]
    level1 = [_leaf(f"{expr}.{w}.message") for w in _WRAPPERS]
    return "coalesce(" + ", ".join([*level2, *level1, _leaf(expr)]) + ")"


def _num(expr: str) -> str:
    """A JSON number that may be a number, a numeric string or {low, high, unsigned}."""
    return (
        f"coalesce(try_cast(json_extract_string({expr}, '$') as bigint), "
        f"try_cast(json_extract_string({expr}, '$.low') as bigint) "
        f"+ coalesce(try_cast(json_extract_string({expr}, '$.high') as bigint), 0) * 4294967296)"
    )


def _epoch_s(expr: str) -> str:
    """Unix seconds (number or string) → TIMESTAMPTZ; NULL when not plausible."""
    return (
        f"case when try_cast({expr} as double) between 946684800 and 4102444800 "
        f"then to_timestamp(try_cast({expr} as double)) end"
    )


def _epoch_ms(expr: str) -> str:
    return (
        f"case when try_cast({expr} as double) between 946684800000 and 4102444800000 "
        f"then make_timestamptz(cast(try_cast({expr} as double) * 1000 as bigint)) end"
    )


def _edit_text(e: str) -> str:
    return (
        f"coalesce({e}.conversation, {e}.extendedTextMessage.text, {e}.imageMessage.caption, "
        f"{e}.videoMessage.caption, {e}.documentMessage.caption)"
    )


def _status_rank(expr: str) -> str:
    return (
        f"case upper({expr}) when 'ERROR' then 0 when 'PENDING' then 1 when 'SERVER_ACK' then 2 "
        f"when 'DELIVERY_ACK' then 3 when 'READ' then 4 when 'PLAYED' then 5 "
        f"when '0' then 0 when '1' then 1 when '2' then 2 when '3' then 3 when '4' then 4 when '5' then 5 end"
    )


def _month(expr: str) -> str:
    return f"strftime({expr}, '%Y-%m')"


# --------------------------------------------------------------------------------------------------
# The parse
# --------------------------------------------------------------------------------------------------


def parse(con: duckdb.DuckDBPyConnection) -> None:
    """Create the temp tables ``p_*`` from the relation ``src`` (bronze rows of this batch)."""
    con.execute("set TimeZone = 'UTC'")
    con.execute(
        f"""
        create or replace temp table env as
        select * from (
            select receipt_id, received_at, instance as instance_id, event, payload, payload_hash,
                   json_valid(payload) as valid
            from src
        ) where event in {USED_EVENTS!r} or not valid
        """
    )
    _parse_messages(con)
    _parse_updates(con)
    _parse_edits(con)
    _parse_deletes(con)
    _parse_calls(con)
    _parse_connection(con)
    _parse_groups(con)
    _parse_contacts(con)
    con.execute(
        """
        insert into p_rejects
        select receipt_id, instance_id, event, 'invalid json', received_at from env where not valid
        """
    )
    con.execute("drop table env")


def _parse_messages(con: duckdb.DuckDBPyConnection) -> None:
    content = _unwrap("d.message")
    con.execute(
        f"""
        create or replace temp table raw_msg as
        with j as (
            select receipt_id, received_at, instance_id, event, payload_hash,
                   json_transform(payload, '{MESSAGE_STRUCT}').data as d
            from env where valid and event in {MESSAGE_EVENTS!r}
            union all
            select receipt_id, received_at, instance_id, event, payload_hash, unnest(
                coalesce(json_transform(payload, '{MESSAGE_SET_STRUCT}').data,
                         json_transform(payload, '{MESSAGE_SET_OBJ_STRUCT}').data.messages)) as d
            from env where valid and event = 'messages.set'
        )
        select receipt_id, received_at, instance_id, event, payload_hash, d, {content} as c,
               {_epoch_s("d.messageTimestamp")} as event_at
        from j
        """
    )
    # rejects: message payloads without a usable key / time
    con.execute(
        """
        create or replace temp table p_rejects as
        select receipt_id, instance_id, event,
               case when d is null then 'data is not a message object'
                    when d.key.id is null or d.key.id = '' then 'message without key.id'
                    when d.key.remoteJid is null then 'message without key.remoteJid'
                    else 'message without a valid messageTimestamp' end as reason,
               received_at
        from raw_msg
        where d is null or d.key.id is null or d.key.id = '' or d.key.remoteJid is null
           or (event_at is null and c.protocolMessage is null and c.reactionMessage is null)
        """
    )
    con.execute("delete from raw_msg where d is null or d.key.id is null or d.key.id = '' or d.key.remoteJid is null")
    kind = """case
        when c.reactionMessage is not null then 'reaction'
        when c.protocolMessage is not null then 'protocol'
        when c.imageMessage is not null then 'image'
        when c.audioMessage is not null then 'audio'
        when c.videoMessage is not null then 'video'
        when c.documentMessage is not null then 'document'
        when c.stickerMessage is not null then 'sticker'
        when c.locationMessage is not null or c.liveLocationMessage is not null then 'location'
        when c.contactMessage is not null or c.contactsArrayMessage is not null then 'contact'
        when c.pollCreationMessage is not null or c.pollCreationMessageV2 is not null
             or c.pollCreationMessageV3 is not null then 'poll'
        when c.conversation is not null or c.extendedTextMessage is not null then 'text'
        else 'other' end"""
    media = "coalesce(c.imageMessage, c.videoMessage, c.audioMessage, c.documentMessage, c.stickerMessage)"
    con.execute(
        f"""
        create or replace temp table msg_k as
        select *, {kind} as kind, {media} as media,
               case when d.key.remoteJid = 'status@broadcast' or d.key.remoteJid like '%@broadcast' then 'broadcast'
                    when d.key.remoteJid like '%@g.us' then 'group'
                    else 'direct' end as chat_type
        from raw_msg
        """
    )
    con.execute("drop table raw_msg")
    # Content rows (real messages): partial message rows with content
    con.execute(
        f"""
        create or replace temp table p_msg as
        select instance_id, d.key.id as message_id,
               d.key.remoteJid as chat_jid, chat_type,
               case when chat_type = 'direct' then
                    list_filter([d.key.remoteJid, d.key.remoteJidAlt, d.key.senderPn, d.key.previousRemoteJid,
                                 d.key.senderLid], lambda x: x is not null) end as direct_jids,
               case when chat_type = 'group' then
                    list_filter([d.key.participant, d.key.participantAlt], lambda x: x is not null) end as part_jids,
               case when coalesce(d.key.fromMe, false) then 'outbound' else 'inbound' end as direction,
               kind,
               coalesce(c.conversation, c.extendedTextMessage.text, media.caption) as content_text,
               media.mimetype as media_mimetype,
               {_num("media.fileLength")} as media_size,
               cast({_num("media.seconds")} as integer) as media_seconds,
               coalesce(d.contextInfo.stanzaId, c.extendedTextMessage.contextInfo.stanzaId,
                        media.contextInfo.stanzaId) as quoted_message_id,
               event_at,
               received_at as first_received_at, received_at as last_received_at,
               {_status_rank("d.status")} as status_rank,
               cast(null as timestamptz) as edited_at, cast(null as varchar) as edit_text,
               false as revoked,
               cast(null as struct(actor_key varchar, emoji varchar, reacted_at timestamptz)[]) as reactions,
               cast(null as varchar) as sender_attendant_id, false as automated,
               coalesce(nullif(lower(d.source), ''), 'unknown') as source,
               event = 'send.message' as via_api,
               payload_hash,
               case when not coalesce(d.key.fromMe, false) then nullif(d.pushName, '') end as push_name
        from msg_k
        where kind not in ('reaction', 'protocol') and chat_type <> 'broadcast' and event_at is not null
        """
    )
    # History + partial rows for reactions and protocol (edit / revoke) messages
    con.execute(
        f"""
        create or replace temp table p_events as
        select instance_id, c.reactionMessage.key.id as message_id, 'reaction' as event_type,
               cast(null as varchar) as status, coalesce(c.reactionMessage.text, '') as text,
               case when coalesce(d.key.fromMe, false) then 'me'
                    else coalesce(d.key.participant, d.key.remoteJid) end as actor_key,
               coalesce({_epoch_ms("c.reactionMessage.senderTimestampMs")}, event_at, received_at) as event_at,
               received_at, receipt_id
        from msg_k where kind = 'reaction' and chat_type <> 'broadcast' and c.reactionMessage.key.id is not null
        union all
        select instance_id, c.protocolMessage.key.id,
               case when upper(c.protocolMessage.type) in ('REVOKE', '0') then 'revoke' else 'edit' end,
               null, case when upper(c.protocolMessage.type) in ('REVOKE', '0') then null
                          else {_edit_text("c.protocolMessage.editedMessage")} end,
               case when coalesce(d.key.fromMe, false) then 'me'
                    else coalesce(d.key.participant, d.key.remoteJid) end,
               coalesce({_epoch_ms("c.protocolMessage.timestampMs")}, event_at, received_at), received_at, receipt_id
        from msg_k
        where kind = 'protocol' and chat_type <> 'broadcast' and c.protocolMessage.key.id is not null
          and upper(c.protocolMessage.type) in ('REVOKE', '0', 'MESSAGE_EDIT', '14')
        """
    )
    con.execute("drop table msg_k")


def _parse_updates(con: duckdb.DuckDBPyConnection) -> None:
    con.execute(
        f"""
        insert into p_events
        select instance_id, d.keyId, 'status',
               case {_status_rank("d.status")} when 0 then 'error' when 1 then 'pending' when 2 then 'server_ack'
                    when 3 then 'delivery_ack' when 4 then 'read' when 5 then 'played' end,
               null, null, received_at, received_at, receipt_id
        from (select *, json_transform(payload, '{UPDATE_STRUCT}').data as d from env
              where valid and event in {STATUS_EVENTS!r})
        where d.keyId is not null and {_status_rank("d.status")} is not null
          and coalesce(d.remoteJid, '') not like '%@broadcast'
        """
    )
    con.execute(
        f"""
        insert into p_rejects
        select receipt_id, instance_id, event, 'status update without keyId or known status', received_at
        from (select *, json_transform(payload, '{UPDATE_STRUCT}').data as d from env
              where valid and event in {STATUS_EVENTS!r})
        where (d.keyId is null or {_status_rank("d.status")} is null)
          and coalesce(d.remoteJid, '') not like '%@broadcast'
        """
    )


def _parse_edits(con: duckdb.DuckDBPyConnection) -> None:
    con.execute(
        f"""
        create or replace temp table raw_edit as
        select receipt_id, received_at, instance_id, event,
               coalesce(d.type, d.message.protocolMessage.type,
                        d.editedMessage.message.protocolMessage.type) as ptype,
               coalesce(d.key, d.message.protocolMessage.key, d.editedMessage.message.protocolMessage.key) as k,
               coalesce({_edit_text("d.editedMessage")},
                        {_edit_text("d.editedMessage.message.protocolMessage.editedMessage")},
                        {_edit_text("d.message.protocolMessage.editedMessage")}) as new_text,
               coalesce({_epoch_ms("d.timestampMs")}, {_epoch_ms("d.message.protocolMessage.timestampMs")},
                        received_at) as event_at
        from (select *, json_transform(payload, '{EDITED_STRUCT}').data as d from env
              where valid and event in {EDIT_EVENTS!r})
        """
    )
    con.execute(
        """
        insert into p_events
        select instance_id, k.id,
               case when upper(ptype) in ('REVOKE', '0') then 'revoke' else 'edit' end, null,
               case when upper(ptype) in ('REVOKE', '0') then null else new_text end,
               case when coalesce(k.fromMe, false) then 'me' else coalesce(k.participant, k.remoteJid) end,
               event_at, received_at, receipt_id
        from raw_edit
        where k.id is not null and upper(ptype) in ('REVOKE', '0', 'MESSAGE_EDIT', '14')
          and coalesce(k.remoteJid, '') not like '%@broadcast'
        """
    )
    con.execute(
        """
        insert into p_rejects
        select receipt_id, instance_id, event, 'edit without key.id', received_at
        from raw_edit where k.id is null
        """
    )
    con.execute("drop table raw_edit")


def _parse_deletes(con: duckdb.DuckDBPyConnection) -> None:
    con.execute(
        f"""
        insert into p_events
        select instance_id, coalesce(d.id, d.key.id), 'delete', null, null,
               case when coalesce(d.fromMe, d.key.fromMe, false) then 'me'
                    else coalesce(d.participant, d.key.participant, d.remoteJid, d.key.remoteJid) end,
               received_at, received_at, receipt_id
        from (select *, json_transform(payload, '{DELETE_STRUCT}').data as d from env
              where valid and event = 'messages.delete')
        where coalesce(d.id, d.key.id) is not null
          and coalesce(d.remoteJid, d.key.remoteJid, '') not like '%@broadcast'
        """
    )


def _parse_calls(con: duckdb.DuckDBPyConnection) -> None:
    con.execute(
        f"""
        create or replace temp table p_calls as
        select instance_id, d.id as call_id, coalesce(d.chatId, d.from) as chat_jid, d.from as from_jid,
               coalesce(d.isVideo, false) as is_video,
               coalesce(d.isGroup, false) or coalesce(d.chatId, '') like '%@g.us' as is_group,
               coalesce(d.groupJid, case when d.chatId like '%@g.us' then d.chatId end) as group_jid,
               lower(d.status) as status,
               coalesce(try_cast(d.date as timestamptz), {_epoch_s("d.date")}, {_epoch_ms("d.date")},
                        received_at) as at,
               received_at, receipt_id
        from (select *, json_transform(payload, '{CALL_STRUCT}').data as d from env
              where valid and event = 'call')
        where d.id is not null
        """
    )
    con.execute(
        f"""
        insert into p_rejects
        select receipt_id, instance_id, event, 'call without id', received_at
        from (select *, json_transform(payload, '{CALL_STRUCT}').data as d from env
              where valid and event = 'call') where d.id is null
        """
    )


def _parse_connection(con: duckdb.DuckDBPyConnection) -> None:
    con.execute(
        f"""
        create or replace temp table p_conn as
        select instance_id, lower(d.state) as state, try_cast(d.statusReason as integer) as status_reason,
               d.wuid as wuid, received_at, receipt_id
        from (select *, json_transform(payload, '{CONN_STRUCT}').data as d from env
              where valid and event = 'connection.update')
        where d.state is not null
        """
    )


def _parse_groups(con: duckdb.DuckDBPyConnection) -> None:
    con.execute(
        f"""
        create or replace temp table raw_groups as
        select receipt_id, received_at, instance_id, event, unnest(coalesce(
                   json_transform(payload, '{GROUPS_STRUCT}').data,
                   [json_transform(payload, '{GROUPS_OBJ_STRUCT}').data])) as g
        from env where valid and event in ('groups.upsert', 'groups.update')
        """
    )
    con.execute(
        f"""
        create or replace temp table p_groups as
        select instance_id, g.id as group_jid, g.subject as subject, g.owner as owner_jid, g.desc as description,
               {_epoch_s("g.creation")} as created_at, try_cast(g.size as integer) as size,
               received_at as updated_at, receipt_id
        from raw_groups where g.id is not null
        """
    )
    con.execute(
        """
        create or replace temp table p_gp as
        select instance_id, g.id as group_jid, p.id as participant_jid, p.phoneNumber as phone_jid, p.lid as lid_jid,
               'snapshot' as action, p.admin as admin, cast(null as varchar) as author_jid,
               received_at as event_at, receipt_id
        from (select *, unnest(g.participants) as p from raw_groups
              where g.id is not null and event = 'groups.upsert')
        where p.id is not null
        """
    )
    con.execute("drop table raw_groups")
    con.execute(
        f"""
        insert into p_gp
        select instance_id, d.id, coalesce(json_extract_string(p, '$.id'), json_extract_string(p, '$')),
               json_extract_string(p, '$.phoneNumber'), json_extract_string(p, '$.lid'),
               lower(d.action), json_extract_string(p, '$.admin'), d.author, received_at, receipt_id
        from (select *, unnest(d.participants) as p
              from (select *, json_transform(payload, '{GP_STRUCT}').data as d from env
                    where valid and event = 'group-participants.update') where d.id is not null)
        """
    )


def _parse_contacts(con: duckdb.DuckDBPyConnection) -> None:
    con.execute(
        f"""
        create or replace temp table p_contacts as
        select instance_id, coalesce(c.remoteJid, c.id) as jid, c.phoneNumber as phone_jid, c.lid as lid_jid,
               nullif(c.pushName, '') as push_name, received_at
        from (select *, unnest(coalesce(json_transform(payload, '{CONTACTS_STRUCT}').data,
                                        [json_transform(payload, '{CONTACTS_OBJ_STRUCT}').data])) as c
              from env where valid and event in ('contacts.upsert', 'contacts.update'))
        where coalesce(c.remoteJid, c.id) is not null
        """
    )
