-- messages_enriched (work table, not written): silver messages bucketed in the instance time zone with
-- their attribution. METRICS.md § Time (day/hour/weekday in the instance zone), § Volume and
-- § Attribution: a human outbound message belongs to the attendant who sent it through BeaZap, else to
-- the assignee of the chat at that moment (ops action log), else 'unattributed'; its team is the
-- attendant's team at that moment (the latest ops action naming the attendant). Automated messages
-- (bot / auto-replies) have no attendant. status@broadcast is ignored.
with m as (
    select m.instance_id, m.message_id, m.conversation_id, m.contact_key, m.direction, m.kind, m.chat_type,
           m.event_at, coalesce(m.automated, false) as automated, coalesce(m.revoked, false) as revoked,
           coalesce(m.edited, false) as edited, m.sender_attendant_id, i.timezone
    from silver.messages m
    join cfg.instances i using (instance_id)
    where m.event_at is not null and coalesce(m.chat_jid, '') <> 'status@broadcast'
),
assigned as (
    select m.*,
           case when m.direction = 'outbound' and not m.automated
                then coalesce(m.sender_attendant_id, a.attendant_id, 'unattributed') end as attendant_id
    from m
    asof left join work.chat_assignee a
        on a.instance_id = m.instance_id and a.contact_key = m.contact_key and m.event_at >= a.occurred_at
)
select x.instance_id, x.message_id, x.conversation_id, x.direction, x.kind, x.chat_type, x.event_at,
       timezone(x.timezone, x.event_at)::date as day,
       hour(timezone(x.timezone, x.event_at))::int as hour,
       isodow(timezone(x.timezone, x.event_at))::int as weekday,
       x.automated, x.revoked, x.edited, x.attendant_id,
       case when x.attendant_id is not null then coalesce(t.team_id, 'none') end as team_id
from assigned x
asof left join work.attendant_teams t
    on t.instance_id = x.instance_id and t.attendant_id = x.attendant_id and x.event_at >= t.occurred_at
