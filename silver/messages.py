"""Messages: fold partial rows into one row per (instance, message id) with the latest state.

Every bronze event that touches a message becomes a *partial row* (content, a status ack, an edit,
a revoke, a reaction, an ops ``message_sent``). :func:`fold` combines partial rows with rules that are
associative, commutative and idempotent, so folding a batch into the existing table gives exactly what
folding everything at once gives (incremental == full, any arrival order, duplicates harmless):

- content (chat, direction, kind, text, media, event time…): the content event with the smallest
  payload hash wins (``messages.upsert`` and ``send.message`` of one message carry the same content);
- ``first_received_at`` min, ``last_received_at`` max; ``status`` max by rank (never backwards);
- edit: the latest ``(edited_at, text)``; ``revoked``/``automated``: any; ``via = api``: any ``send.message``;
- reactions: the latest reaction per actor (an empty emoji removes it).

A message whose content was not seen yet (an ack or a reaction that arrived first, or targets a
message older than BeaZap) is kept as a *stub* row with ``event_at`` NULL (partition
``event_month = NULL``); gold ignores it until the content arrives.
"""

from __future__ import annotations

import duckdb

REACTION = "struct(actor_key varchar, emoji varchar, reacted_at timestamptz)"

PART_COLUMNS = (
    "instance_id, message_id, chat_jid, chat_type, contact_phone, contact_lid, participant_key, direction, kind, "
    "content_text, media_mimetype, media_size, media_seconds, quoted_message_id, event_at, first_received_at, "
    "last_received_at, status_rank, edited_at, edit_text, revoked, reactions, sender_attendant_id, automated, "
    "source, via_api, payload_hash"
)

STATUS_NAME = (
    "case {x} when 0 then 'error' when 1 then 'pending' when 2 then 'server_ack' when 3 then 'delivery_ack' "
    "when 4 then 'read' when 5 then 'played' end"
)
STATUS_RANK = (
    "case {x} when 'error' then 0 when 'pending' then 1 when 'server_ack' then 2 when 'delivery_ack' then 3 "
    "when 'read' then 4 when 'played' then 5 end"
)


def build_parts(con: duckdb.DuckDBPyConnection) -> None:
    """``parts``: partial rows of this batch from ``p_msg``, ``p_events`` and ``ops_new`` (message_sent)."""
    jl = "".join(f" left join jm j{i} on j{i}.jid = m.direct_jids[{i}]" for i in range(1, 6))
    pl = "".join(f" left join jm q{i} on q{i}.jid = m.part_jids[{i}]" for i in range(1, 3))
    con.execute(
        f"""
        create or replace temp table parts as
        select m.instance_id, m.message_id, m.chat_jid, m.chat_type,
               coalesce(j1.phone, j2.phone, j3.phone, j4.phone, j5.phone) as contact_phone,
               coalesce(j1.lid, j2.lid, j3.lid, j4.lid, j5.lid) as contact_lid,
               coalesce(q1.phone, q2.phone, q1.lid, q2.lid, m.part_jids[1]) as participant_key,
               m.direction, m.kind, m.content_text, m.media_mimetype, m.media_size, m.media_seconds,
               m.quoted_message_id, m.event_at, m.first_received_at, m.last_received_at, m.status_rank,
               m.edited_at, m.edit_text, m.revoked, m.reactions, m.sender_attendant_id, m.automated,
               m.source, m.via_api, m.payload_hash, m.push_name
        from p_msg m{jl}{pl}
        """
    )
    con.execute(
        f"""
        insert into parts by name
        select instance_id, message_id, received_at as last_received_at,
               case when event_type = 'status' then {STATUS_RANK.format(x="status")} end as status_rank,
               case when event_type = 'edit' then event_at end as edited_at,
               case when event_type = 'edit' then text end as edit_text,
               event_type in ('revoke', 'delete') as revoked,
               case when event_type = 'reaction' then [{{'actor_key': actor_key, 'emoji': coalesce(text, ''),
                                                         'reacted_at': event_at}}::{REACTION}] end as reactions,
               false as automated, false as via_api
        from p_events
        """
    )
    con.execute(
        """
        insert into parts by name
        select instance_id, json_extract_string(details, '$.message_id') as message_id,
               case when actor_id not in ('system', 'bot') then actor_id end as sender_attendant_id,
               coalesce(try_cast(json_extract_string(details, '$.automated') as boolean), false) as automated,
               false as revoked, false as via_api
        from ops_new
        where action = 'message_sent' and json_extract_string(details, '$.message_id') is not null
        """
    )


def existing_as_parts(source: str) -> str:
    """SQL turning rows of the messages table (``source``) back into partial rows."""
    return f"""
        select instance_id, message_id, chat_jid, chat_type, contact_phone, contact_lid, participant_key, direction,
               kind, case when edited then original_text else text end as content_text, media_mimetype, media_size,
               media_seconds, quoted_message_id, event_at, first_received_at, last_received_at,
               {STATUS_RANK.format(x="status")} as status_rank, edited_at,
               case when edited then text end as edit_text, coalesce(revoked, false) as revoked,
               cast(reactions as {REACTION}[]) as reactions, sender_attendant_id,
               coalesce(automated, false) as automated,
               source, via = 'api' as via_api, payload_hash
        from {source}
    """


def fold(con: duckdb.DuckDBPyConnection, source: str = "parts") -> None:
    """``folded``: one row per message from the partial rows in ``source`` (see module doc)."""
    content_cols = [
        "chat_jid",
        "chat_type",
        "direction",
        "kind",
        "content_text",
        "media_mimetype",
        "media_size",
        "media_seconds",
        "quoted_message_id",
        "event_at",
        "participant_key",
    ]
    packed = ", ".join(f"'{c}': {c}" for c in content_cols)
    con.execute(
        f"""
        create or replace temp table folded as
        with g0 as (
            select instance_id, message_id,
                   arg_min({{{packed}}}, payload_hash) filter (where payload_hash is not null) as content,
                   min(payload_hash) as payload_hash,
                   max(contact_phone) as contact_phone, max(contact_lid) as contact_lid,
                   min(first_received_at) as first_received_at, max(last_received_at) as last_received_at,
                   max(status_rank) as status_rank,
                   max(edited_at) as edited_at,
                   arg_max(edit_text, {{'a': edited_at, 'b': edit_text}}) filter (where edited_at is not null)
                       as edit_text,
                   bool_or(coalesce(revoked, false)) as revoked,
                   min(sender_attendant_id) as sender_attendant_id,
                   bool_or(coalesce(automated, false)) as automated,
                   coalesce(max(source) filter (where source <> 'unknown'),
                            max(source) filter (where payload_hash is not null)) as source,
                   bool_or(coalesce(via_api, false)) as via_api
            from {source} group by instance_id, message_id
        ),
        g as (select g0.* exclude (content), unnest(content) from g0),
        r0 as (
            select instance_id, message_id, unnest(reactions) as x from {source} where reactions is not null
        ),
        r1 as (
            select instance_id, message_id, x.actor_key as actor_key,
                   arg_max(x, {{'a': x.reacted_at, 'b': x.emoji}}) as x
            from r0 group by all
        ),
        r as (
            select instance_id, message_id, list(x order by x.actor_key) as reactions,
                   count(*) filter (where x.emoji <> '') as reaction_count,
                   arg_max(x.emoji, {{'a': x.reacted_at, 'b': x.emoji}}) filter (where x.emoji <> '') as last_reaction
            from r1 group by all
        )
        select g.*, r.reactions, coalesce(r.reaction_count, 0) as reaction_count, r.last_reaction
        from g left join r using (instance_id, message_id)
        """
    )


def finalize_sql(source: str = "folded") -> str:
    """SQL producing silver.messages rows from ``folded`` + ``lidmap`` + ``msg_conv``."""
    return f"""
        select f.instance_id, f.message_id, f.chat_jid, f.chat_type,
               case when f.chat_type = 'direct' then coalesce(f.contact_phone, lm.phone, f.contact_lid) end
                   as contact_key,
               case when f.chat_type = 'direct' then coalesce(f.contact_phone, lm.phone) end as contact_phone,
               case when f.chat_type = 'direct' then f.contact_lid end as contact_lid,
               f.participant_key, f.direction, f.kind,
               case when f.edited_at is not null then coalesce(f.edit_text, f.content_text) else f.content_text end
                   as text,
               case when f.edited_at is not null then f.content_text end as original_text,
               f.media_mimetype, f.media_size, f.media_seconds, f.quoted_message_id, f.event_at,
               strftime(f.event_at, '%Y-%m') as event_month, f.first_received_at, f.last_received_at,
               {STATUS_NAME.format(x="f.status_rank")} as status,
               f.edited_at is not null as edited, f.revoked, cast(f.reaction_count as integer) as reaction_count,
               f.last_reaction, f.sender_attendant_id, f.automated, f.source,
               case when f.via_api then 'api' when f.direction = 'outbound' then 'app'
                    when f.direction = 'inbound' then 'customer' end as via,
               mc.conversation_id, f.payload_hash, f.edited_at, f.reactions
        from {source} f
        left join lidmap lm on lm.instance_id = f.instance_id and lm.lid = f.contact_lid
        left join msg_conv mc on mc.instance_id = f.instance_id and mc.message_id = f.message_id
    """
