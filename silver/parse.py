"""Parse raw bronze webhooks into normalized *partial* rows, entirely inside DuckDB.

Input: a DuckDB relation named ``src`` with the bronze ``webhook_events`` columns. Each Evolution
payload is parsed once: ``json_extract_string`` with one list of paths covering every event family,
(rare array-shaped events — groups, contacts, history sync — go through ``json_transform``); the
message object is unwrapped (ephemeral/viewOnce/documentWithCaption/edited) as small JSON text.
Plain SQL then derives the partial rows the fold step combines:

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
# JSON structures for json_transform (rare events only; unknown keys ignored, mismatches give NULL)
# --------------------------------------------------------------------------------------------------
_WRAPPERS = (
    "ephemeralMessage",
    "viewOnceMessage",
    "viewOnceMessageV2",
    "viewOnceMessageV2Extension",
    "documentWithCaptionMessage",
    "editedMessage",
)
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


def _status_rank(expr: str) -> str:
    return (
        f"case upper({expr}) when 'ERROR' then 0 when 'PENDING' then 1 when 'SERVER_ACK' then 2 "
        f"when 'DELIVERY_ACK' then 3 when 'READ' then 4 when 'PLAYED' then 5 "
        f"when '0' then 0 when '1' then 1 when '2' then 2 when '3' then 3 when '4' then 4 when '5' then 5 end"
    )


# --------------------------------------------------------------------------------------------------
# The parse
# --------------------------------------------------------------------------------------------------


# Paths read from every relevant payload in ONE parse (``json_extract_string`` with a path list).
# Message-object paths are relative to ``data`` (``messages.set`` elements use them without the prefix).
MSG_PATHS = (
    "key.id", "key.remoteJid", "key.fromMe", "key.participant", "key.remoteJidAlt", "key.participantAlt",
    "key.senderPn", "key.senderLid", "key.previousRemoteJid", "pushName", "status", "messageTimestamp",
    "source", "contextInfo.stanzaId", "messageType",
)  # fmt: skip
OTHER_PATHS = (
    "keyId", "remoteJid", "fromMe", "type", "editedMessage", "timestampMs", "id", "participant", "state",
    "statusReason", "wuid", "from", "chatId", "date", "isVideo", "isGroup", "groupJid",
)  # fmt: skip
_IDX = {p: i + 1 for i, p in enumerate(MSG_PATHS)} | {
    f"d.{p}": len(MSG_PATHS) + i + 1 for i, p in enumerate(OTHER_PATHS)
}
RARE_EVENTS = ("messages.set", "groups.upsert", "groups.update", "group-participants.update", "contacts.upsert",
               "contacts.update")  # fmt: skip

# Paths inside the unwrapped content object.
_MEDIA_KEYS = ("imageMessage", "videoMessage", "audioMessage", "documentMessage", "stickerMessage")
_MEDIA_FIELDS = ("mimetype", "caption", "fileLength", "seconds", "contextInfo.stanzaId")
CONTENT_PATHS = (
    "conversation", "extendedTextMessage.text", "extendedTextMessage.contextInfo.stanzaId",
    "reactionMessage.key.id", "reactionMessage.text", "reactionMessage.senderTimestampMs",
    "protocolMessage.key.id", "protocolMessage.type", "protocolMessage.timestampMs",
    "protocolMessage.editedMessage.conversation", "protocolMessage.editedMessage.extendedTextMessage.text",
    "protocolMessage.editedMessage.imageMessage.caption", "protocolMessage.editedMessage.videoMessage.caption",
    *(f"{k}.{f}" for k in _MEDIA_KEYS for f in _MEDIA_FIELDS),
)  # fmt: skip
_C = {p: i + 1 for i, p in enumerate(CONTENT_PATHS)}
_IDX = {p: i + 1 for i, p in enumerate(MSG_PATHS)} | {
    f"d.{p}": len(MSG_PATHS) + i + 1 for i, p in enumerate(OTHER_PATHS)
}
_CONTENT_START = len(MSG_PATHS) + len(OTHER_PATHS) + 1  # content paths follow in the same list

EDITED_PATHS = (
    "conversation", "extendedTextMessage.text", "imageMessage.caption", "videoMessage.caption",
    "documentMessage.caption", "message.protocolMessage.editedMessage.conversation",
    "message.protocolMessage.editedMessage.extendedTextMessage.text",
)  # fmt: skip


def _paths(prefix: str, paths: tuple[str, ...]) -> str:
    return "[" + ", ".join(f"'$.{prefix}{p}'" for p in paths) + "]"


def v(path: str) -> str:
    """Column expression for a path of the single-pass extraction list ``v``."""
    return f"v[{_IDX[path]}]"


def c(path: str) -> str:
    return f"cv[{_C[path]}]"


def _fast_expr() -> str:
    """True when ``messageType`` names content found directly under ``data.message`` (no wrapper):
    the content fields already extracted in ``v`` are used as they are (the fast path)."""
    mtype = v("messageType")

    def cp(path: str) -> str:
        return f"v[{_CONTENT_START + _C[path] - 1}]"

    markers = [
        ("conversation", "conversation"),
        ("extendedTextMessage", "extendedTextMessage.text"),
        *((k, f"{k}.mimetype") for k in _MEDIA_KEYS),
        ("reactionMessage", "reactionMessage.key.id"),
        ("protocolMessage", "protocolMessage.key.id"),
    ]
    return "coalesce(" + " or ".join(f"({mtype} = '{k}' and {cp(m)} is not null)" for k, m in markers) + ", false)"


def _num_text(expr: str) -> str:
    """A number written as a number, a numeric string or ``{"low": n, "high": h}`` (text form)."""
    return (
        f"coalesce(try_cast({expr} as bigint), try_cast(try_cast({expr} as double) as bigint), "
        f"case when {expr} like '{{%' then try_cast(json_extract_string({expr}, '$.low') as bigint) "
        f"+ coalesce(try_cast(json_extract_string({expr}, '$.high') as bigint), 0) * 4294967296 end)"
    )


def _bool_text(expr: str) -> str:
    return f"coalesce(try_cast({expr} as boolean), false)"


_WRAPPER_LIST = "[" + ", ".join(f"'{w}'" for w in _WRAPPERS) + "]"


def _unwrap_text(m: str) -> str:
    """Peel one wrapper level of the message JSON text ``m``."""
    w = f"list_filter(json_keys({m}), lambda k: list_contains({_WRAPPER_LIST}, k))[1]"
    return f"(case when {w} is null then {m} else json_extract_string({m}, '$.\"' || {w} || '\".message') end)"


def parse(con: duckdb.DuckDBPyConnection) -> None:
    """Create the temp tables ``p_*`` from the relation ``src`` (bronze rows of this batch)."""
    con.execute("set TimeZone = 'UTC'")
    paths = (
        "["
        + ", ".join(
            [f"'$.data.{p}'" for p in (*MSG_PATHS, *OTHER_PATHS)] + [f"'$.data.message.{p}'" for p in CONTENT_PATHS]
        )
        + "]"
    )

    def ext_sql(guard: bool) -> str:
        extract = f"json_extract_string(payload, {paths})"
        return f"""
        create or replace temp table ext as
        select receipt_id, received_at, instance_id, event, payload_hash, v,
               case when event in {RARE_EVENTS!r}
                         or (event in {(*MESSAGE_EVENTS, *EDIT_EVENTS)!r} and not {_fast_expr()})
                    then payload end as raw
        from (
            select receipt_id, received_at, instance as instance_id, event, payload_hash, payload,
                   {f"try({extract})" if guard else extract} as v
            from src where event in {USED_EVENTS!r}
        )
        """

    try:  # bronze holds what the receiver accepted (valid JSON); fall back to a guarded parse if not
        con.execute(ext_sql(guard=False))
    except duckdb.InvalidInputException:
        con.execute(ext_sql(guard=True))
    con.execute(
        """
        create or replace temp table p_rejects as
        select receipt_id, instance_id, event, 'invalid json' as reason, received_at from ext where v is null
        """
    )
    con.execute("delete from ext where v is null")
    _parse_messages(con)
    _parse_updates(con)
    _parse_deletes(con)
    _parse_calls(con)
    _parse_connection(con)
    _parse_groups(con)
    _parse_contacts(con)
    con.execute("drop table ext")


def _parse_messages(con: duckdb.DuckDBPyConnection) -> None:
    n_other = len(OTHER_PATHS)
    set_paths = (
        "["
        + ", ".join(
            [f"'$.{p}'" for p in MSG_PATHS] + ["'$.__none'"] * n_other + [f"'$.message.{p}'" for p in CONTENT_PATHS]
        )
        + "]"
    )
    fast = _fast_expr()
    message_json = (
        "json_extract_string(raw, case when event = 'messages.set' then '$.message' else '$.data.message' end)"
    )
    con.execute(
        f"""
        create or replace temp table raw_msg as
        with j as (
            select receipt_id, received_at, instance_id, event, payload_hash, v, raw from ext
            where event in {(*MESSAGE_EVENTS, *EDIT_EVENTS)!r}
            union all
            select receipt_id, received_at, instance_id, event, payload_hash, json_extract_string(e, {set_paths}) as v,
                   e as raw
            from (select *, unnest(coalesce(try(json_extract(raw, '$.data[*]')),
                                            try(json_extract(raw, '$.data.messages[*]')))) as e
                  from ext where event = 'messages.set')
        ),
        fast as (
            select receipt_id, received_at, instance_id, event, payload_hash, v, [{v("messageType")}] as ck,
                   list_slice(v, {_CONTENT_START}, {_CONTENT_START + len(CONTENT_PATHS) - 1}) as cv
            from j where {fast}
        ),
        slow as (  -- wrapped (ephemeral/viewOnce/…), unknown or missing messageType: unwrap the JSON text
            select receipt_id, received_at, instance_id, event, payload_hash, v,
                   json_keys(content) as ck, json_extract_string(content, {_paths("", CONTENT_PATHS)}) as cv
            from (select *, {_unwrap_text(_unwrap_text(message_json))} as content from j where not {fast})
        )
        select *, {_epoch_s(v("messageTimestamp"))} as event_at from (select * from fast union all select * from slow)
        """
    )
    has = "list_contains(ck, '{}')"
    kind = f"""case
        when {has.format("reactionMessage")} then 'reaction'
        when {has.format("protocolMessage")} then 'protocol'
        when {has.format("imageMessage")} then 'image'
        when {has.format("audioMessage")} then 'audio'
        when {has.format("videoMessage")} then 'video'
        when {has.format("documentMessage")} then 'document'
        when {has.format("stickerMessage")} then 'sticker'
        when {has.format("locationMessage")} or {has.format("liveLocationMessage")} then 'location'
        when {has.format("contactMessage")} or {has.format("contactsArrayMessage")} then 'contact'
        when {has.format("pollCreationMessage")} or {has.format("pollCreationMessageV2")}
             or {has.format("pollCreationMessageV3")} then 'poll'
        when {has.format("conversation")} or {has.format("extendedTextMessage")} then 'text'
        else 'other' end"""
    is_msg_event = f"event in {(*MESSAGE_EVENTS, 'messages.set')!r}"
    con.execute(
        f"""
        insert into p_rejects
        select receipt_id, instance_id, event,
               case when {v("key.id")} is null or {v("key.id")} = '' then 'message without key.id'
                    when {v("key.remoteJid")} is null then 'message without key.remoteJid'
                    else 'message without a valid messageTimestamp' end,
               received_at
        from raw_msg
        where {is_msg_event}
          and ({v("key.id")} is null or {v("key.id")} = '' or {v("key.remoteJid")} is null
               or (event_at is null and not coalesce({has.format("protocolMessage")}, false)
                   and not coalesce({has.format("reactionMessage")}, false)))
        """
    )
    media = {f: "coalesce(" + ", ".join(c(f"{k}.{f}") for k in _MEDIA_KEYS) + ")" for f in
             ("mimetype", "caption", "fileLength", "seconds", "contextInfo.stanzaId")}  # fmt: skip
    con.execute(
        f"""
        create or replace temp table msg_k as
        select receipt_id, received_at, instance_id, event, payload_hash, v, cv, event_at,
               case when {is_msg_event} then {kind} else 'protocol' end as kind,
               case when {v("key.remoteJid")} like '%@broadcast' then 'broadcast'
                    when {v("key.remoteJid")} like '%@g.us' then 'group'
                    else 'direct' end as chat_type,
               {_bool_text(v("key.fromMe"))} as from_me
        from raw_msg
        where {v("key.id")} is not null and {v("key.id")} <> '' and {v("key.remoteJid")} is not null
        """
    )
    con.execute("drop table raw_msg")
    con.execute(
        f"""
        create or replace temp table p_msg as
        select instance_id, {v("key.id")} as message_id,
               {v("key.remoteJid")} as chat_jid, chat_type,
               case when chat_type = 'direct' then
                    list_filter([{v("key.remoteJid")}, {v("key.remoteJidAlt")}, {v("key.senderPn")},
                                 {v("key.previousRemoteJid")}, {v("key.senderLid")}], lambda x: x is not null)
               end as direct_jids,
               case when chat_type = 'group' then
                    list_filter([{v("key.participant")}, {v("key.participantAlt")}], lambda x: x is not null)
               end as part_jids,
               case when from_me then 'outbound' else 'inbound' end as direction,
               kind,
               coalesce({c("conversation")}, {c("extendedTextMessage.text")}, {media["caption"]}) as content_text,
               {media["mimetype"]} as media_mimetype,
               {_num_text(media["fileLength"])} as media_size,
               cast({_num_text(media["seconds"])} as integer) as media_seconds,
               coalesce({v("contextInfo.stanzaId")}, {c("extendedTextMessage.contextInfo.stanzaId")},
                        {media["contextInfo.stanzaId"]}) as quoted_message_id,
               event_at,
               received_at as first_received_at, received_at as last_received_at,
               {_status_rank(v("status"))} as status_rank,
               cast(null as timestamptz) as edited_at, cast(null as varchar) as edit_text,
               false as revoked,
               cast(null as struct(actor_key varchar, emoji varchar, reacted_at timestamptz)[]) as reactions,
               cast(null as varchar) as sender_attendant_id, false as automated,
               coalesce(nullif(lower({v("source")}), ''), 'unknown') as source,
               event = 'send.message' as via_api,
               payload_hash,
               case when not from_me then nullif({v("pushName")}, '') end as push_name
        from msg_k
        where kind not in ('reaction', 'protocol') and chat_type <> 'broadcast' and event_at is not null
        """
    )
    actor = f"case when from_me then 'me' else coalesce({v('key.participant')}, {v('key.remoteJid')}) end"
    revoke = f"upper({c('protocolMessage.type')}) in ('REVOKE', '0')"
    con.execute(
        f"""
        create or replace temp table p_events as
        select instance_id, {c("reactionMessage.key.id")} as message_id, 'reaction' as event_type,
               cast(null as varchar) as status, coalesce({c("reactionMessage.text")}, '') as text,
               {actor} as actor_key,
               coalesce({_epoch_ms(c("reactionMessage.senderTimestampMs"))}, event_at, received_at) as event_at,
               received_at, receipt_id
        from msg_k where kind = 'reaction' and chat_type <> 'broadcast' and {c("reactionMessage.key.id")} is not null
        union all
        select instance_id, {c("protocolMessage.key.id")},
               case when {revoke} then 'revoke' else 'edit' end,
               null,
               case when not {revoke} then coalesce({c("protocolMessage.editedMessage.conversation")},
                    {c("protocolMessage.editedMessage.extendedTextMessage.text")},
                    {c("protocolMessage.editedMessage.imageMessage.caption")},
                    {c("protocolMessage.editedMessage.videoMessage.caption")}) end,
               {actor},
               coalesce({_epoch_ms(c("protocolMessage.timestampMs"))}, event_at, received_at), received_at, receipt_id
        from msg_k
        where kind = 'protocol' and chat_type <> 'broadcast' and {c("protocolMessage.key.id")} is not null
          and upper({c("protocolMessage.type")}) in ('REVOKE', '0', 'MESSAGE_EDIT', '14')
        """
    )
    # messages.edited / send.message.update without a protocolMessage wrapper: {key, type, editedMessage}
    con.execute(
        f"""
        insert into p_events
        select instance_id, {v("key.id")},
               case when upper({v("d.type")}) in ('REVOKE', '0') then 'revoke' else 'edit' end,
               null,
               case when upper({v("d.type")}) not in ('REVOKE', '0') then
                    list_filter(json_extract_string({v("d.editedMessage")}, {_paths("", EDITED_PATHS)}),
                                lambda x: x is not null)[1] end,
               {actor}, coalesce({_epoch_ms(v("d.timestampMs"))}, received_at), received_at, receipt_id
        from msg_k
        where event in {EDIT_EVENTS!r} and cv[{_C["protocolMessage.key.id"]}] is null
          and upper({v("d.type")}) in ('REVOKE', '0', 'MESSAGE_EDIT', '14') and chat_type <> 'broadcast'
        """
    )
    con.execute(
        f"""
        insert into p_rejects
        select receipt_id, instance_id, event, 'edit without key.id', received_at from ext
        where event in {EDIT_EVENTS!r} and {v("key.id")} is null
        """
    )
    con.execute("drop table msg_k")


def _parse_updates(con: duckdb.DuckDBPyConnection) -> None:
    rank = _status_rank(v("status"))
    con.execute(
        f"""
        insert into p_events
        select instance_id, {v("d.keyId")}, 'status',
               case {rank} when 0 then 'error' when 1 then 'pending' when 2 then 'server_ack'
                    when 3 then 'delivery_ack' when 4 then 'read' when 5 then 'played' end,
               null, null, received_at, received_at, receipt_id
        from ext
        where event in {STATUS_EVENTS!r} and {v("d.keyId")} is not null and {rank} is not null
          and coalesce({v("d.remoteJid")}, '') not like '%@broadcast'
        """
    )
    con.execute(
        f"""
        insert into p_rejects
        select receipt_id, instance_id, event, 'status update without keyId or known status', received_at
        from ext
        where event in {STATUS_EVENTS!r} and ({v("d.keyId")} is null or {rank} is null)
          and coalesce({v("d.remoteJid")}, '') not like '%@broadcast'
        """
    )


def _parse_deletes(con: duckdb.DuckDBPyConnection) -> None:
    mid = f"coalesce({v('d.id')}, {v('key.id')})"
    jid = f"coalesce({v('d.remoteJid')}, {v('key.remoteJid')})"
    con.execute(
        f"""
        insert into p_events
        select instance_id, {mid}, 'delete', null, null,
               case when {_bool_text(f"coalesce({v('d.fromMe')}, {v('key.fromMe')})")} then 'me'
                    else coalesce({v("d.participant")}, {v("key.participant")}, {jid}) end,
               received_at, received_at, receipt_id
        from ext
        where event = 'messages.delete' and {mid} is not null and coalesce({jid}, '') not like '%@broadcast'
        """
    )


def _parse_calls(con: duckdb.DuckDBPyConnection) -> None:
    chat = f"coalesce({v('d.chatId')}, {v('d.from')})"
    con.execute(
        f"""
        create or replace temp table p_calls as
        select instance_id, {v("d.id")} as call_id, {chat} as chat_jid, {v("d.from")} as from_jid,
               {_bool_text(v("d.isVideo"))} as is_video,
               {_bool_text(v("d.isGroup"))} or coalesce({v("d.chatId")}, '') like '%@g.us' as is_group,
               coalesce({v("d.groupJid")}, case when {v("d.chatId")} like '%@g.us' then {v("d.chatId")} end)
                   as group_jid,
               lower({v("status")}) as status,
               coalesce(try_cast({v("d.date")} as timestamptz), {_epoch_s(v("d.date"))},
                        {_epoch_ms(v("d.date"))}, received_at) as at,
               received_at, receipt_id
        from ext
        where event = 'call' and {v("d.id")} is not null
        """
    )
    con.execute(
        f"""
        insert into p_rejects
        select receipt_id, instance_id, event, 'call without id', received_at
        from ext where event = 'call' and {v("d.id")} is null
        """
    )


def _parse_connection(con: duckdb.DuckDBPyConnection) -> None:
    con.execute(
        f"""
        create or replace temp table p_conn as
        select instance_id, lower({v("d.state")}) as state, try_cast({v("d.statusReason")} as integer) as status_reason,
               {v("d.wuid")} as wuid, received_at, receipt_id
        from ext
        where event = 'connection.update' and {v("d.state")} is not null
        """
    )


def _parse_groups(con: duckdb.DuckDBPyConnection) -> None:
    con.execute(
        f"""
        create or replace temp table raw_groups as
        select receipt_id, received_at, instance_id, event, unnest(coalesce(
                   json_transform(raw, '{GROUPS_STRUCT}').data,
                   [json_transform(raw, '{GROUPS_OBJ_STRUCT}').data])) as g
        from ext where event in ('groups.upsert', 'groups.update')
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
              from (select *, json_transform(raw, '{GP_STRUCT}').data as d from ext
                    where event = 'group-participants.update') where d.id is not null)
        """
    )


def _parse_contacts(con: duckdb.DuckDBPyConnection) -> None:
    con.execute(
        f"""
        create or replace temp table p_contacts as
        select instance_id, coalesce(c.remoteJid, c.id) as jid, c.phoneNumber as phone_jid, c.lid as lid_jid,
               nullif(c.pushName, '') as push_name, received_at
        from (select *, unnest(coalesce(json_transform(raw, '{CONTACTS_STRUCT}').data,
                                        [json_transform(raw, '{CONTACTS_OBJ_STRUCT}').data])) as c
              from ext where event in ('contacts.upsert', 'contacts.update'))
        where coalesce(c.remoteJid, c.id) is not null
        """
    )
