-- reply_waits_base (work table): every customer wait after the first response, calendar only.
-- docs/metrics.md § Clocks, reply time: "for each later customer wait: from the first inbound message not
-- yet answered to the next human response". Human response = outbound and not automated (automated
-- messages never stop a clock). Messages are ordered by event time; an inbound and an outbound in the
-- same second are taken as question then answer. Segment k holds the messages after the k-th human
-- response; its first inbound opens wait k, answered by human response k + 1. Wait 0 of an
-- inbound-opened conversation is the first-response wait (FRT), not a reply wait.
with msgs as (
    select m.conversation_id, m.message_id, m.event_at, m.direction, m.attendant_id,
           m.direction = 'outbound' and not m.automated as human
    from work.messages_enriched m
    where m.conversation_id is not null and m.chat_type = 'direct'
),
ordered as (
    select *,
           sum(case when human then 1 else 0 end) over (
               partition by conversation_id order by event_at, direction = 'outbound', message_id
               rows between unbounded preceding and current row)::int as n_human
    from msgs
),
waits as (
    select conversation_id, n_human as wait_index, min(event_at) as wait_started_at, count(*) as inbound_messages
    from ordered where direction = 'inbound'
    group by conversation_id, n_human
),
responses as (
    select conversation_id, n_human, event_at as responded_at, message_id as response_message_id, attendant_id
    from ordered where human
)
select c.instance_id, w.conversation_id, w.wait_index, w.wait_started_at, w.inbound_messages,
       r.responded_at, r.response_message_id, r.attendant_id as responder_id,
       c.opened_at, c.timezone, c.team_id, c.assignee_id, c.status as conversation_status,
       case when r.responded_at is not null then 'answered'
            when c.status = 'open' then 'running' else 'unanswered' end as wait_status,
       coalesce(r.responded_at, case when c.status = 'open' then greatest(c.as_of, w.wait_started_at)
                                     else c.ended_at end) as wait_end,
       v.version_id as v_wait
from waits w
join work.conversation_clocks c using (conversation_id)
left join responses r on r.conversation_id = w.conversation_id and r.n_human = w.wait_index + 1
asof left join work.versions v on v.instance_id = c.instance_id and w.wait_started_at >= v.from_utc
where not (c.origin = 'inbound' and w.wait_index = 0)
