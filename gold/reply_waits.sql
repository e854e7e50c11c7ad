-- reply_waits (gold/reply_waits): one row per customer wait after the first response, with its reply
-- time in calendar and business seconds and its next-reply SLA outcome. docs/metrics.md § Clocks (reply
-- time; a wait that ends in resolution without a reply is an unanswered wait) and § SLA (met if the
-- clock stopped within the target, breached if it stopped after it or is still running past it,
-- pending while running within it; `sla_outcome_calendar` / `sla_outcome_business` on each basis,
-- `sla_outcome` on the policy's; rules: macros of gold/stats.py). Anchored to the day the conversation opened (date anchor rule).
-- Attributed to the attendant who answered (`responder_id`).
with w as (
    select w.*,
           epoch(w.wait_end) - epoch(w.wait_started_at) as elapsed_calendar,
           e.bh - s.bh as elapsed_business,
           coalesce(st.seconds, sd.seconds) as target_seconds,
           case when st.seconds is not null then st.basis else sd.basis end as target_basis
    from work.reply_waits_base w
    left join work.clock_points s
        on s.instance_id = w.instance_id and s.version_id = w.v_wait and s.ts = w.wait_started_at
    left join work.clock_points e
        on e.instance_id = w.instance_id and e.version_id = w.v_wait and e.ts = w.wait_end
    left join cfg.sla st
        on st.instance_id = w.instance_id and st.target = 'next_reply' and st.team_id = w.team_id
    left join cfg.sla sd on sd.instance_id = w.instance_id and sd.target = 'next_reply' and sd.team_id = '*'
),
x as (
    select *,
           sla_outcome(elapsed_calendar, target_seconds, wait_status = 'answered', wait_status = 'running')
               as sla_outcome_calendar,
           sla_outcome(elapsed_business, target_seconds, wait_status = 'answered', wait_status = 'running')
               as sla_outcome_business,
           sla_overdue(elapsed_calendar, target_seconds) as sla_overdue_calendar_seconds,
           sla_overdue(elapsed_business, target_seconds) as sla_overdue_business_seconds
    from w
)
select instance_id, conversation_id, wait_index, wait_started_at, inbound_messages,
       responded_at, response_message_id, responder_id, assignee_id, coalesce(team_id, 'none') as team_id,
       wait_status,
       timezone(timezone, opened_at)::date as opened_day,
       case when wait_status = 'answered' then elapsed_calendar end as reply_seconds,
       case when wait_status = 'answered' then elapsed_business end as reply_business_seconds,
       duration_bucket(case when wait_status = 'answered' then elapsed_calendar end) as reply_bucket,
       target_seconds as sla_target_seconds, target_basis as sla_basis,
       case when target_basis = 'business' then sla_outcome_business else sla_outcome_calendar end as sla_outcome,
       case when target_basis = 'business' then sla_overdue_business_seconds else sla_overdue_calendar_seconds end
           as sla_overdue_seconds,
       sla_outcome_calendar, sla_outcome_business, sla_overdue_calendar_seconds, sla_overdue_business_seconds
from x
