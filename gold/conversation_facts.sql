-- conversation_facts (gold/conversation_facts): one row per conversation with every clock in calendar
-- and business-hours seconds, the SLA outcome per target, attribution and the reopen flags.
-- docs/metrics.md § Conversations, § Clocks (FRT once per inbound-opened conversation; resolution =
-- resolved_at - opened_at, none for expired or abandoned; handling = resolved_at - first assignment; reply waits
-- summarized from reply_waits), § SLA (met / breached / pending; a clock that stopped without a
-- response is breached if it ran past the target, else not counted; each outcome on each basis —
-- `*_sla_calendar` on calendar time, `*_sla_business` on business time — and `frt_sla` /
-- `resolution_sla` on the policy's basis; rules: macros of gold/stats.py), § Attribution (FRT to the first
-- responder and their team at that moment; resolution/handling to the assignee at resolution and
-- their team) and the date anchor (durations belong to `opened_day`, in the instance time zone).
-- An abandoned conversation (customer-opened, no first response within the abandonment limit) has its
-- first-response clock stopped at the limit (`expired_at`): breached for every target it waited past.
-- Running clocks are measured to the build's as-of (silver's, cfg.params; recorded in the build stats and
-- the Dagster materialization metadata, not per row: a moving as-of must not rewrite every day).
with c as (
    select c.*,
           epoch(c.first_response_at) - epoch(c.opened_at) as frt_seconds,
           bfr.bh - bo.bh as frt_business_seconds,
           epoch(c.frt_end) - epoch(c.opened_at) as frt_elapsed,
           bfe.bh - bo.bh as frt_elapsed_business,
           epoch(c.resolved_at) - epoch(c.opened_at) as resolution_seconds,
           bre.bh - bo.bh as res_elapsed_business,
           epoch(c.res_end) - epoch(c.opened_at) as res_elapsed,
           case when c.resolved_at is not null and c.first_assigned_at is not null
                then epoch(c.resolved_at) - epoch(c.first_assigned_at) end as handling_seconds,
           case when c.resolved_at is not null and c.first_assigned_at is not null
                then bhr.bh - bha.bh end as handling_business_seconds
    from work.conversation_clocks c
    left join work.clock_points bo on bo.instance_id = c.instance_id and bo.version_id = c.v_open and bo.ts = c.opened_at
    left join work.clock_points bfr
        on bfr.instance_id = c.instance_id and bfr.version_id = c.v_open and bfr.ts = c.first_response_at
    left join work.clock_points bfe
        on bfe.instance_id = c.instance_id and bfe.version_id = c.v_open and bfe.ts = c.frt_end
    left join work.clock_points bre
        on bre.instance_id = c.instance_id and bre.version_id = c.v_open and bre.ts = c.res_end
    left join work.clock_points bha
        on bha.instance_id = c.instance_id and bha.version_id = c.v_assign and bha.ts = c.first_assigned_at
    left join work.clock_points bhr
        on bhr.instance_id = c.instance_id and bhr.version_id = c.v_assign and bhr.ts = c.resolved_at
),
targets as (
    select c.conversation_id,
           coalesce(ft.seconds, fd.seconds) as frt_target_seconds,
           case when ft.seconds is not null then ft.basis else fd.basis end as frt_basis,
           coalesce(rt.seconds, rd.seconds) as resolution_target_seconds,
           case when rt.seconds is not null then rt.basis else rd.basis end as resolution_basis
    from c
    left join cfg.sla ft on ft.instance_id = c.instance_id and ft.target = 'first_response' and ft.team_id = c.team_id
    left join cfg.sla fd on fd.instance_id = c.instance_id and fd.target = 'first_response' and fd.team_id = '*'
    left join cfg.sla rt on rt.instance_id = c.instance_id and rt.target = 'resolution' and rt.team_id = c.team_id
    left join cfg.sla rd on rd.instance_id = c.instance_id and rd.target = 'resolution' and rd.team_id = '*'
),
waits as (
    select conversation_id,
           count(*) as reply_waits,
           count(*) filter (where wait_status = 'answered') as replies,
           count(*) filter (where wait_status = 'unanswered') as unanswered_waits,
           sum(reply_seconds) as reply_seconds_total,
           max(reply_seconds) as reply_seconds_max,
           sum(reply_business_seconds) as reply_business_seconds_total,
           max(reply_business_seconds) as reply_business_seconds_max,
           count(*) filter (where sla_outcome = 'met') as next_reply_met,
           count(*) filter (where sla_outcome = 'breached') as next_reply_breached,
           count(*) filter (where sla_outcome = 'pending') as next_reply_pending,
           max(sla_overdue_seconds) as next_reply_overdue_seconds
    from gold.reply_waits
    group by conversation_id
),
x as (
    select c.*, t.* exclude (conversation_id), w.* exclude (conversation_id)
    from c
    join targets t using (conversation_id)
    left join waits w using (conversation_id)
),
-- Each SLA outcome on each basis (calendar time, business time); the policy's basis picks the headline.
o as (
    select x.*,
           case when x.origin = 'inbound' then sla_outcome(x.frt_elapsed, x.frt_target_seconds,
               x.first_response_at is not null, x.ended_at is null) end as frt_sla_calendar,
           case when x.origin = 'inbound' then sla_outcome(x.frt_elapsed_business, x.frt_target_seconds,
               x.first_response_at is not null, x.ended_at is null) end as frt_sla_business,
           case when x.origin = 'inbound' then sla_overdue(x.frt_elapsed, x.frt_target_seconds) end
               as frt_overdue_calendar_seconds,
           case when x.origin = 'inbound' then sla_overdue(x.frt_elapsed_business, x.frt_target_seconds) end
               as frt_overdue_business_seconds,
           case when x.status not in ('expired', 'abandoned') then sla_outcome(x.res_elapsed, x.resolution_target_seconds,
               x.status = 'resolved', true) end as resolution_sla_calendar,
           case when x.status not in ('expired', 'abandoned') then sla_outcome(x.res_elapsed_business, x.resolution_target_seconds,
               x.status = 'resolved', true) end as resolution_sla_business,
           case when x.status not in ('expired', 'abandoned') then sla_overdue(x.res_elapsed, x.resolution_target_seconds) end
               as resolution_overdue_calendar_seconds,
           case when x.status not in ('expired', 'abandoned') then sla_overdue(x.res_elapsed_business, x.resolution_target_seconds) end
               as resolution_overdue_business_seconds
    from x
)
select x.conversation_id, x.instance_id, x.contact_key, x.origin, x.status,
       x.opened_at, timezone(x.timezone, x.opened_at)::date as opened_day,
       hour(timezone(x.timezone, x.opened_at))::int as opened_hour,
       isodow(timezone(x.timezone, x.opened_at))::int as opened_weekday,
       x.first_response_at, x.resolved_at, x.expired_at, x.closed_at, x.last_message_at, x.first_assigned_at,
       timezone(x.timezone, x.resolved_at)::date as resolved_day,
       timezone(x.timezone, x.expired_at)::date as expired_day,
       x.first_responder_id,
       coalesce(frt_team.team_id, frt_default.team_id, case when x.first_responder_id is not null then 'none' end)
           as first_responder_team_id,
       x.assignee_id, coalesce(x.team_id, 'none') as team_id, x.resolved_by,
       x.is_reopen, x.reopened, x.previous_conversation_id,
       x.inbound_count, x.outbound_count,
       x.frt_seconds, x.frt_business_seconds, duration_bucket(x.frt_seconds) as frt_bucket,
       x.resolution_seconds, case when x.resolved_at is not null then x.res_elapsed_business end
           as resolution_business_seconds,
       duration_bucket(x.resolution_seconds) as resolution_bucket,
       x.handling_seconds, x.handling_business_seconds,
       coalesce(x.reply_waits, 0) as reply_waits, coalesce(x.replies, 0) as replies,
       coalesce(x.unanswered_waits, 0) as unanswered_waits,
       x.reply_seconds_total, x.reply_seconds_max, x.reply_business_seconds_total, x.reply_business_seconds_max,
       x.frt_target_seconds, x.frt_basis,
       case when x.frt_basis = 'business' then x.frt_sla_business else x.frt_sla_calendar end as frt_sla,
       case when x.frt_basis = 'business' then x.frt_overdue_business_seconds else x.frt_overdue_calendar_seconds end
           as frt_overdue_seconds,
       x.frt_sla_calendar, x.frt_sla_business, x.frt_overdue_calendar_seconds, x.frt_overdue_business_seconds,
       case when coalesce(x.next_reply_breached, 0) > 0 then 'breached'
            when coalesce(x.next_reply_pending, 0) > 0 then 'pending'
            when coalesce(x.next_reply_met, 0) > 0 then 'met'
       end as next_reply_sla,
       coalesce(x.next_reply_met, 0) as next_reply_met, coalesce(x.next_reply_breached, 0) as next_reply_breached,
       coalesce(x.next_reply_pending, 0) as next_reply_pending,
       x.next_reply_overdue_seconds,
       x.resolution_target_seconds, x.resolution_basis,
       case when x.resolution_basis = 'business' then x.resolution_sla_business else x.resolution_sla_calendar end
           as resolution_sla,
       case when x.resolution_basis = 'business' then x.resolution_overdue_business_seconds
            else x.resolution_overdue_calendar_seconds end as resolution_overdue_seconds,
       x.resolution_sla_calendar, x.resolution_sla_business,
       x.resolution_overdue_calendar_seconds, x.resolution_overdue_business_seconds
from o x
asof left join work.attendant_teams frt_team
    on frt_team.instance_id = x.instance_id and frt_team.attendant_id = x.first_responder_id
   and x.first_response_at >= frt_team.occurred_at
left join cfg.attendants frt_default
    on frt_default.instance_id = x.instance_id and frt_default.attendant_id = x.first_responder_id
