-- messages_enriched (work table, not written): silver messages bucketed in the instance time zone with
-- their attribution. docs/metrics.md § Time (day/hour/weekday in the instance zone), § Volume and
-- § Attribution: a human outbound message belongs to the attendant who sent it through BeaZap, else to
-- the assignee of its conversation at that moment (ops action log since the conversation opened),
-- else 'unattributed'; its team is the
-- attendant's team at that moment (the latest ops action naming the attendant; before any, the team
-- the ops store's attendants table gives them). Automated messages
-- (bot / auto-replies) have no attendant. status@broadcast is ignored.
with m as (
    select m.instance_id, m.message_id, m.conversation_id, m.contact_key, m.direction, m.kind, m.chat_type,
           m.event_at, coalesce(m.automated, false) as automated, coalesce(m.revoked, false) as revoked,
           coalesce(m.edited, false) as edited, coalesce(m.reaction_count, 0) as reaction_count,
           m.sender_attendant_id,
           timezone(i.timezone, m.event_at) as local_ts
    from silver.messages m
    join cfg.instances i using (instance_id)
    where m.event_at is not null and coalesce(m.chat_jid, '') <> 'status@broadcast'
),
human_known as (
    select *, sender_attendant_id as attendant_id from m
    where direction = 'outbound' and not automated and sender_attendant_id is not null
),
human_unknown as (
    select m.* exclude (opened_at),
           coalesce(case when a.occurred_at >= m.opened_at then a.attendant_id end, 'unattributed') as attendant_id
    from (
        select x.*, c.opened_at
        from m x left join silver.conversations c using (conversation_id)
        where x.direction = 'outbound' and not x.automated and x.sender_attendant_id is null
    ) m
    asof left join work.chat_assignee a
        on a.instance_id = m.instance_id and a.contact_key = m.contact_key and m.event_at >= a.occurred_at
),
human as (
    select h.*, coalesce(t.team_id, d.team_id, 'none') as team_id
    from (select * from human_known union all select * from human_unknown) h
    asof left join work.attendant_teams t
        on t.instance_id = h.instance_id and t.attendant_id = h.attendant_id and h.event_at >= t.occurred_at
    left join cfg.attendants d on d.instance_id = h.instance_id and d.attendant_id = h.attendant_id
),
everything as (
    select * exclude (sender_attendant_id) from human
    union all by name
    select * exclude (sender_attendant_id), null::varchar as attendant_id, null::varchar as team_id
    from m where not (direction = 'outbound' and not automated)
)
select instance_id, message_id, conversation_id, contact_key, direction, kind, chat_type, event_at,
       local_ts::date as day, hour(local_ts)::int as hour, isodow(local_ts)::int as weekday,
       automated, revoked, edited, reaction_count, attendant_id, team_id
from everything
