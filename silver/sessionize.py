"""Sessionization: cut each direct chat into conversations (``docs/metrics.md`` → Conversations).

Pure DuckDB SQL over two inputs registered on the connection:

- ``tl_msgs(instance_id, contact_key, message_id, event_at, direction, automated, sender_attendant_id,
  chat_jid)``: every direct-chat message of the contacts being recomputed (their whole history);
- ``tl_ops(instance_id, contact_key, action_id, action, actor_id, attendant_id, team_id, occurred_at)``:
  their operational actions (contact keys already resolved LID → phone);
- ``as_of``: the run's as-of instant (``silver.pipeline``), the "now" that decides whether a quiet
  conversation is still ``open`` or already ``expired`` / ``abandoned``.

Rules (documented in docs/silver.md and docs/metrics.md → Conversations):
- timeline order per contact: event time, then inbound before outbound before operational actions,
  then message/action id (WhatsApp times are whole seconds, so ties are common);
- a message opens a conversation when none is open: first message of the contact, the previous one
  was resolved, expired (more than ``timeout`` since its last message, once it had its first response
  or when the business opened it) or abandoned (customer-opened, no first response for ``abandon``);
  a conversation waiting for its first response never expires by inactivity;
- an action applies to the conversation open at its time under the same rule: ``resolve`` closes
  it, ``reopen`` undoes a resolve, ``assign``/``transfer``/``unassign`` set the assignee;
- first response = first non-automated outbound message of an inbound-origin conversation.

Creates temp tables ``conv_out`` (the conversations, silver schema columns) and ``msg_conv``
(instance_id, message_id, conversation_id).
"""

from __future__ import annotations

from datetime import UTC, datetime

import duckdb

LIFECYCLE = ("resolve", "reopen")
ASSIGN = ("assign", "transfer", "route", "unassign")


def sessionize(
    con: duckdb.DuckDBPyConnection, *, timeout_s: float, reopen_s: float, abandon_s: float, as_of: datetime
) -> None:
    t = float(timeout_s)
    r = float(reopen_s)
    a_s = float(abandon_s)
    # lifecycle actions, one per (contact, instant): the last by action id wins a tie
    con.execute(
        f"""
        create or replace temp table lc_pts as
        select instance_id, contact_key, occurred_at as t, arg_max(action, action_id) as action
        from tl_ops where action in {LIFECYCLE!r} group by all
        """
    )
    # messages: one sort for the previous message, the last lifecycle action before each (ASOF);
    # ``hard``: a break whatever the conversation's state (first message, resolved since the previous one);
    # ``gap``: an inactivity gap, a break only when the open conversation may expire (see _cut)
    con.execute(
        f"""
        create or replace temp table tm0 as
        select m.*, l.action as last_lc, l.t as last_lc_t,
               m.prev_t is null or coalesce(l.action = 'resolve' and l.t >= m.prev_t, false) as hard,
               m.prev_t is not null and epoch(m.t) - epoch(m.prev_t) > {t} as gap,
               m.direction = 'outbound' and not m.automated as human
        from (
            select instance_id, contact_key, event_at as t, case when direction = 'inbound' then 0 else 1 end as ord,
                   message_id as id, direction, coalesce(automated, false) as automated, sender_attendant_id,
                   chat_jid,
                   lag(event_at) over (partition by instance_id, contact_key
                                       order by event_at, case when direction = 'inbound' then 0 else 1 end,
                                                message_id) as prev_t
            from tl_msgs where event_at is not null
        ) m
        asof left join lc_pts l on l.instance_id = m.instance_id and l.contact_key = m.contact_key and m.t > l.t
        """
    )
    _cut(con, a_s)
    con.execute("drop table tm0")
    con.execute(
        f"""
        create or replace temp table tops as
        with a as (
            select o.instance_id, o.contact_key, o.occurred_at as t, o.action_id as id, o.action,
                   coalesce(o.actor_id, o.attendant_id) as actor_id, o.attendant_id, o.team_id,
                   m.sess, m.t as prev_msg_at, m.s_open,
                   m.s_origin = 'inbound' and not (m.fr_before or m.human) as waiting
            from tl_ops o
            asof left join tm m on m.instance_id = o.instance_id and m.contact_key = o.contact_key
                               and o.occurred_at >= m.t
            where o.action in {(*LIFECYCLE, *ASSIGN)!r}
        ),
        b as (
            select *, prev_msg_at is not null
                      and case when waiting then epoch(t) - epoch(s_open) <= {a_s}
                               else epoch(t) - epoch(prev_msg_at) <= {t} end as open_now
            from a
        )
        select *,
               coalesce(last_value(case when open_now and action in {LIFECYCLE!r} then action end ignore nulls)
                        over (partition by instance_id, contact_key, sess order by t, id
                              rows between unbounded preceding and 1 preceding) = 'resolve', false)
                   as resolved_before
        from b where open_now
        """
    )
    con.execute(
        f"""
        create or replace temp table conv_out as
        with s as (
            select instance_id, contact_key, sess,
                   arg_min({{'t': t, 'id': id, 'direction': direction}}, {{'t': t, 'o': ord, 'id': id}}) as first,
                   arg_max(chat_jid, {{'t': t, 'o': ord, 'id': id}}) as chat_jid, max(t) as last_message_at,
                   max(t) filter (where direction = 'inbound') as last_inbound_at,
                   count(*) filter (where direction = 'inbound') as inbound_count,
                   count(*) filter (where direction = 'outbound') as outbound_count,
                   arg_min({{'t': t, 'id': id, 'sender': sender_attendant_id}}, {{'t': t, 'id': id}})
                       filter (where direction = 'outbound' and not automated) as fr
            from tm group by all
        ),
        lc as (
            select instance_id, contact_key, sess, t, id, action, actor_id,
                   action = 'resolve' and not resolved_before as effective_resolve
            from tops where action in {LIFECYCLE!r}
        ),
        res as (
            select instance_id, contact_key, sess,
                   arg_max(action, {{'t': t, 'id': id}}) as final_action,
                   arg_max({{'t': t, 'id': id, 'by': actor_id}}, {{'t': t, 'id': id}})
                       filter (where effective_resolve) as res
            from lc group by all
        ),
        base as (
            select s.*, s.first.t as opened_at, s.first.direction as origin, s.first.id as opening_message_id,
                   case when s.first.direction = 'inbound' then s.fr end as fr1,
                   case when r.final_action = 'resolve' then r.res end as res1
            from s
            left join res r using (instance_id, contact_key, sess)
        ),
        asg as (  -- assignment actions applied to an open, unresolved conversation (as the live store does)
            select instance_id, contact_key, sess, t, id, action,
                   (action in ('transfer', 'unassign') or attendant_id is not null) as sets_assignee,
                   case when action = 'unassign' then null else attendant_id end as attendant_id,
                   (action <> 'unassign' and (team_id is not null or action = 'transfer')) as sets_team,
                   team_id
            from tops where not resolved_before and action in {ASSIGN!r}
        ),
        asg_agg as (
            select b.instance_id, b.contact_key, b.sess,
                   min(a.t) filter (where a.action <> 'unassign' and a.attendant_id is not null
                                    and (b.res1 is null
                                         or {{'t': a.t, 'id': a.id}} < {{'t': b.res1.t, 'id': b.res1.id}}))
                       as first_assigned_at,
                   arg_max({{'v': a.attendant_id}}, {{'t': a.t, 'id': a.id}})
                       filter (where a.sets_assignee
                               and (b.res1 is null or {{'t': a.t, 'id': a.id}} < {{'t': b.res1.t, 'id': b.res1.id}}))
                       as final_assignee,
                   arg_max({{'v': a.team_id}}, {{'t': a.t, 'id': a.id}})
                       filter (where a.sets_team
                               and (b.res1 is null or {{'t': a.t, 'id': a.id}} < {{'t': b.res1.t, 'id': b.res1.id}}))
                       as final_team,
                   arg_max({{'v': a.attendant_id}}, {{'t': a.t, 'id': a.id}})
                       filter (where a.sets_assignee and b.fr1 is not null and a.t < b.fr1.t) as asg_at_fr
            from base b
            join asg a on a.instance_id = b.instance_id and a.contact_key = b.contact_key and a.sess = b.sess
            group by all
        ),
        c as (
            select b.*, g.first_assigned_at, g.final_assignee, g.final_team, g.asg_at_fr,
                   'cv_' || left(sha256(b.instance_id || chr(31) || b.contact_key || chr(31) || b.opening_message_id),
                                 24) as conversation_id,
                   case when b.res1 is not null then 'resolved'
                        else {unresolved_status("b.origin", "b.fr1", "b.opened_at", "b.last_message_at", as_of, t, a_s)}
                   end as status
            from base b left join asg_agg g using (instance_id, contact_key, sess)
        ),
        c2 as (
            select *,
                   lag(conversation_id) over wc as previous_conversation_id,
                   lag(status) over wc as prev_status,
                   lag(res1.t) over wc as prev_resolved_at
            from c window wc as (partition by instance_id, contact_key order by sess)
        ),
        c3 as (
            select *,
                   coalesce(origin = 'inbound' and prev_status = 'resolved'
                            and epoch(opened_at) - epoch(prev_resolved_at) <= {r}, false) as is_reopen
            from c2
        )
        select conversation_id, instance_id, contact_key, chat_jid, origin, opening_message_id, opened_at,
               fr1.t as first_response_at, fr1.id as first_response_message_id,
               case when fr1 is not null then coalesce(fr1.sender, asg_at_fr.v, 'unattributed') end
                   as first_responder_id,
               last_message_at, last_inbound_at, status, res1.t as resolved_at, res1.by as resolved_by,
               {closing_times("status", "opened_at", "last_message_at", t, a_s, resolved_at="res1.t")},
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
        from tm m join conv_out c using (instance_id, contact_key, sess)
        """
    )


def _ts(value: datetime) -> str:
    return f"'{value.astimezone(UTC).isoformat()}'::timestamptz"


def _secs(seconds: float) -> str:
    return f"to_microseconds(cast({float(seconds)} * 1e6 as bigint))"


def unresolved_status(
    origin: str,
    first_response: str,
    opened_at: str,
    last_message_at: str,
    as_of: datetime,
    timeout_s: float,
    abandon_s: float,
) -> str:
    """SQL status of a conversation that is not resolved, at ``as_of`` (``METRICS.md`` → Conversations):
    waiting for its first response (customer-opened, none yet) it never expires by inactivity and is
    ``abandoned`` once ``abandon_s`` passed since it opened; otherwise ``expired`` once ``timeout_s``
    passed since its last message; else ``open``. Arguments are SQL expressions."""
    now = _ts(as_of)
    return f"""(case when {origin} = 'inbound' and {first_response} is null
                     then case when epoch({now}) - epoch({opened_at}) > {float(abandon_s)} then 'abandoned'
                               else 'open' end
                     when epoch({now}) - epoch({last_message_at}) > {float(timeout_s)} then 'expired'
                     else 'open' end)"""


def closing_times(
    status: str, opened_at: str, last_message_at: str, timeout_s: float, abandon_s: float, *, resolved_at: str
) -> str:
    """SQL ``expired_at, closed_at`` for a conversation with ``status``: expired → last message + timeout
    and its last message; abandoned → both at opening + abandonment limit; resolved → closed then."""
    return f"""case when {status} = 'expired' then {last_message_at} + {_secs(timeout_s)}
                    when {status} = 'abandoned' then {opened_at} + {_secs(abandon_s)} end as expired_at,
               case when {status} = 'resolved' then {resolved_at}
                    when {status} = 'expired' then {last_message_at}
                    when {status} = 'abandoned' then {opened_at} + {_secs(abandon_s)} end as closed_at"""


_ORDER = "partition by instance_id, contact_key order by t, ord, id"
_CUM = f"({_ORDER} rows between unbounded preceding and current row)"


def _cut_pass(con: duckdb.DuckDBPyConnection, src: str, out: str) -> None:
    """Breaks and sessions of the messages in ``src`` given the forced (abandonment) breaks so far.

    A *run* starts at every hard or forced break and at every human response; the run's candidates
    are its start and its inactivity gaps. A gap is a break unless an earlier candidate of its run is
    an inbound message: that message opened (or left) a conversation waiting for its first response,
    which never expires by inactivity. Human responses are runs' starts, so the wait ends there.
    """
    cum_before = f"({_ORDER} rows between unbounded preceding and 1 preceding)"
    con.execute(
        f"""
        create or replace temp table {out} as
        with a as (
            select s.*, s.hard or f.id is not null as fb,
                   (direction = 'inbound' and (s.hard or f.id is not null or s.gap))::int as inb_cand
            from {src} s left join ab_forced f using (instance_id, contact_key, id)
        ),
        -- inbound candidates before each message; a run starts at a break (fb) or a human response
        b as (select *, coalesce(sum(inb_cand) over {cum_before}, 0) as n_before, row_number() over {_CUM} as rn
              from a),
        -- the previous message's run had an inbound candidate up to it (n_before minus the count at
        -- the latest run start before this message: counts only grow, so that is their running max)
        c as (
            select *, fb or (gap and not coalesce(
                       n_before - max(case when fb or human then n_before end) over {cum_before} > 0, false))
                   as brk
            from b
        ),
        -- one more pass in the same order (no re-sort by session): the session number, its opening
        -- (the latest break up to the row) and whether a human responded in it before the row
        f as (
            select *, sum(brk::int) over {_CUM} as sess,
                   max(case when brk then t end) over {_CUM} as s_open,
                   last_value(case when brk then direction end ignore nulls) over {_CUM} as s_origin,
                   max(case when brk then rn end) over {_CUM} as s_rn,
                   max(case when human then rn end) over {cum_before} as human_rn
            from c
        )
        select * exclude (fb, inb_cand, n_before, brk, rn, s_rn, human_rn),
               coalesce(human_rn >= s_rn, false) as fr_before
        from f
        """
    )


def _abandoned(con: duckdb.DuckDBPyConnection, table: str, abandon_s: float) -> int:
    """Adds each contact's earliest message that comes after its waiting conversation was abandoned to
    ``ab_forced`` (everything before it is final); returns how many were added."""
    con.execute(
        f"""
        create or replace temp table ab_new as
        select instance_id, contact_key, arg_min(id, {{'t': t, 'o': ord, 'id': id}}) as id
        from {table}
        where s_origin = 'inbound' and epoch(t) - epoch(s_open) > {abandon_s}
          and not fr_before  -- the wait is still on when it arrives
        group by all
        """
    )
    con.execute("insert into ab_forced select * from ab_new")
    return con.execute("select count(*) from ab_new").fetchall()[0][0]


def _cut(con: duckdb.DuckDBPyConnection, abandon_s: float) -> None:
    """``tm``: ``tm0`` with its conversation number ``sess`` per contact (and the session's opening
    time, origin and whether it was answered up to each message).

    A waiting conversation is cut by its abandonment (the first message after ``abandon_s`` from its
    opening), which changes what follows, so contacts with an abandonment are recomputed until no new
    one appears (one abandonment per contact per round; most contacts never need a second round)."""
    con.execute("create or replace temp table ab_forced (instance_id varchar, contact_key varchar, id varchar)")
    _cut_pass(con, "tm0", "tm")
    added = _abandoned(con, "tm", abandon_s)
    while added:
        con.execute(
            """
            create or replace temp table tm_redo as
            select * from tm0 semi join ab_new using (instance_id, contact_key)
            """
        )
        _cut_pass(con, "tm_redo", "tm_part")
        con.execute(
            "delete from tm where exists (select 1 from ab_new n where n.instance_id = tm.instance_id"
            " and n.contact_key = tm.contact_key)"
        )
        con.execute("insert into tm by name select * from tm_part")
        added = _abandoned(con, "tm_part", abandon_s)
    for name in ("tm_redo", "tm_part", "ab_new", "ab_forced"):
        con.execute(f"drop table if exists {name}")
