"""Sessionization: cut each direct chat into conversations (``METRICS.md`` → Conversations).

Pure DuckDB SQL over two inputs registered on the connection:

- ``tl_msgs(instance_id, contact_key, message_id, event_at, direction, automated, sender_attendant_id,
  chat_jid)``: every direct-chat message of the contacts being recomputed (their whole history);
- ``tl_ops(instance_id, contact_key, action_id, action, actor_id, attendant_id, team_id, occurred_at)``:
  their operational actions (contact keys already resolved LID → phone);
- ``wm(instance_id, wm)``: the instance watermark (latest message event time seen) — the "now" that
  decides whether a quiet conversation is still ``open`` or already ``expired``.

Rules (documented in docs/silver.md):
- timeline order per contact: event time, then inbound before outbound before operational actions,
  then message/action id (WhatsApp times are whole seconds, so ties are common);
- a message opens a conversation when none is open: first message of the contact, more than
  ``timeout`` since the previous message (inactivity expiry), or the previous one was resolved;
- an action applies to the conversation open at its time (previous message within ``timeout``):
  ``resolve`` closes it, ``reopen`` undoes a resolve, ``assign``/``transfer``/``unassign`` set the assignee;
- first response = first non-automated outbound message of an inbound-origin conversation.

Creates temp tables ``conv_out`` (the conversations, silver schema columns) and ``msg_conv``
(instance_id, message_id, conversation_id).
"""

from __future__ import annotations

import duckdb

LIFECYCLE = ("resolve", "reopen")
ASSIGN = ("assign", "transfer", "route", "unassign")


def sessionize(con: duckdb.DuckDBPyConnection, *, timeout_s: float, reopen_s: float) -> None:
    t = float(timeout_s)
    r = float(reopen_s)
    con.execute(
        f"""
        create or replace temp table tl as
        with tl0 as (
            select instance_id, contact_key, event_at as t, case when direction = 'inbound' then 0 else 1 end as ord,
                   message_id as id, true as is_msg, direction, coalesce(automated, false) as automated,
                   sender_attendant_id, chat_jid, cast(null as varchar) as action, cast(null as varchar) as actor_id,
                   cast(null as varchar) as attendant_id, cast(null as varchar) as team_id
            from tl_msgs where event_at is not null
            union all
            select instance_id, contact_key, occurred_at, 2, action_id, false, null, false, null, null,
                   action, actor_id, attendant_id, team_id
            from tl_ops where action in {(*LIFECYCLE, *ASSIGN)!r}
        ),
        w1 as (
            select *, row_number() over (partition by instance_id, contact_key order by t, ord, id) as rn from tl0
        ),
        w2 as (
            select *,
                   max(case when is_msg then t end) over wp as prev_msg_at,
                   max(case when is_msg then rn end) over wp as prev_msg_rn
            from w1
            window wp as (partition by instance_id, contact_key order by rn
                          rows between unbounded preceding and 1 preceding)
        ),
        w3 as (
            select *,
                   (not is_msg and prev_msg_at is not null and epoch(t) - epoch(prev_msg_at) <= {t}) as open_now
            from w2
        ),
        w4 as (
            select *,
                   last_value(case when open_now and action in {LIFECYCLE!r} then action end ignore nulls)
                       over wp as prev_lc,
                   last_value(case when open_now and action in {LIFECYCLE!r} then rn end ignore nulls)
                       over wp as prev_lc_rn
            from w3
            window wp as (partition by instance_id, contact_key order by rn
                          rows between unbounded preceding and 1 preceding)
        ),
        w5 as (
            select *,
                   coalesce(prev_lc = 'resolve' and prev_lc_rn > prev_msg_rn, false) as resolved_before,
                   is_msg and (prev_msg_at is null or epoch(t) - epoch(prev_msg_at) > {t}
                               or coalesce(prev_lc = 'resolve' and prev_lc_rn > prev_msg_rn, false)) as brk
            from w4
        )
        select *, sum(case when brk then 1 else 0 end) over (partition by instance_id, contact_key order by rn
                      rows between unbounded preceding and current row) as sess
        from w5
        """
    )
    con.execute(
        f"""
        create or replace temp table conv_out as
        with msgs as (select * from tl where is_msg),
        s as (
            select instance_id, contact_key, sess,
                   arg_min(t, rn) as opened_at, arg_min(direction, rn) as origin, arg_min(id, rn) as opening_message_id,
                   arg_max(chat_jid, rn) as chat_jid, max(t) as last_message_at,
                   max(t) filter (where direction = 'inbound') as last_inbound_at,
                   count(*) filter (where direction = 'inbound') as inbound_count,
                   count(*) filter (where direction = 'outbound') as outbound_count,
                   min(rn) filter (where direction = 'outbound' and not automated) as fr_rn
            from msgs group by all
        ),
        fr as (
            select s.instance_id, s.contact_key, s.sess, m.t as fr_at, m.id as fr_id,
                   m.sender_attendant_id as fr_sender,
                   m.rn as fr_rn
            from s join msgs m on m.instance_id = s.instance_id and m.contact_key = s.contact_key and m.rn = s.fr_rn
            where s.origin = 'inbound'
        ),
        lc as (  -- effective lifecycle actions inside a conversation
            select instance_id, contact_key, sess, rn, t, action, coalesce(actor_id, attendant_id) as actor_id,
                   action = 'resolve' and not resolved_before as effective_resolve
            from tl where not is_msg and open_now and action in {LIFECYCLE!r} and sess > 0
        ),
        lc_final as (
            select instance_id, contact_key, sess, arg_max(action, rn) as final_action,
                   max(rn) filter (where effective_resolve) as res_rn
            from lc group by all
        ),
        res as (
            select f.instance_id, f.contact_key, f.sess, l.t as resolved_at, l.actor_id as resolved_by, l.rn as res_rn
            from lc_final f join lc l on l.instance_id = f.instance_id and l.contact_key = f.contact_key
                                    and l.rn = f.res_rn
            where f.final_action = 'resolve'
        ),
        asg as (  -- assignment actions applied to an open, unresolved conversation (as the live store does)
            select instance_id, contact_key, sess, rn, t, action,
                   (action in ('transfer', 'unassign') or attendant_id is not null) as sets_assignee,
                   case when action = 'unassign' then null else attendant_id end as attendant_id,
                   (action <> 'unassign' and (team_id is not null or action = 'transfer')) as sets_team,
                   team_id
            from tl where not is_msg and open_now and not resolved_before and action in {ASSIGN!r} and sess > 0
        ),
        base as (
            select s.*, fr.fr_at, fr.fr_id, fr.fr_sender, fr.fr_rn as fr_rn2, res.resolved_at, res.resolved_by,
                   res.res_rn, w.wm
            from s
            left join fr using (instance_id, contact_key, sess)
            left join res using (instance_id, contact_key, sess)
            left join wm w using (instance_id)
        ),
        asg_agg as (
            select b.instance_id, b.contact_key, b.sess,
                   min(a.t) filter (where a.action <> 'unassign' and a.attendant_id is not null
                                    and (b.res_rn is null or a.rn < b.res_rn)) as first_assigned_at,
                   arg_max({{'v': a.attendant_id}}, a.rn)
                       filter (where a.sets_assignee and (b.res_rn is null or a.rn < b.res_rn)) as final_assignee,
                   arg_max({{'v': a.team_id}}, a.rn)
                       filter (where a.sets_team and (b.res_rn is null or a.rn < b.res_rn)) as final_team,
                   arg_max({{'v': a.attendant_id}}, a.rn)
                       filter (where a.sets_assignee and b.fr_rn2 is not null and a.rn < b.fr_rn2) as asg_at_fr
            from base b
            join asg a on a.instance_id = b.instance_id and a.contact_key = b.contact_key and a.sess = b.sess
            group by all
        ),
        with_asg as (
            select b.*, g.first_assigned_at, g.final_assignee, g.final_team, g.asg_at_fr
            from base b left join asg_agg g using (instance_id, contact_key, sess)
        ),
        c as (
            select *,
                   'cv_' || left(sha256(instance_id || chr(31) || contact_key || chr(31) || opening_message_id), 24)
                       as conversation_id,
                   case when resolved_at is not null then 'resolved'
                        when wm is not null and epoch(wm) - epoch(last_message_at) > {t} then 'expired'
                        else 'open' end as status
            from with_asg
        ),
        c2 as (
            select *,
                   lag(conversation_id) over wc as previous_conversation_id,
                   lag(status) over wc as prev_status,
                   lag(resolved_at) over wc as prev_resolved_at
            from c window wc as (partition by instance_id, contact_key order by sess)
        ),
        c3 as (
            select *,
                   coalesce(origin = 'inbound' and prev_status = 'resolved'
                            and epoch(opened_at) - epoch(prev_resolved_at) <= {r}, false) as is_reopen
            from c2
        )
        select conversation_id, instance_id, contact_key, chat_jid, origin, opening_message_id, opened_at,
               fr_at as first_response_at, fr_id as first_response_message_id,
               case when fr_at is not null then coalesce(fr_sender, asg_at_fr.v, 'unattributed') end
                   as first_responder_id,
               last_message_at, last_inbound_at, status, resolved_at, resolved_by,
               case when status = 'expired' then last_message_at + to_microseconds(cast({t} * 1e6 as bigint)) end
                   as expired_at,
               case when status = 'resolved' then resolved_at when status = 'expired' then last_message_at end
                   as closed_at,
               first_assigned_at, final_assignee.v as assignee_id, final_team.v as team_id,
               cast(inbound_count as integer) as inbound_count, cast(outbound_count as integer) as outbound_count,
               previous_conversation_id, is_reopen,
               coalesce(lead(is_reopen) over (partition by instance_id, contact_key order by sess), false) as reopened,
               strftime(opened_at, '%Y-%m') as opened_month, sess
        from c3
        """
    )
    con.execute(
        """
        create or replace temp table msg_conv as
        select m.instance_id, m.id as message_id, c.conversation_id
        from tl m join conv_out c using (instance_id, contact_key, sess)
        where m.is_msg
        """
    )
