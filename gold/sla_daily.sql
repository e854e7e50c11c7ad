-- sla_daily (gold/sla_daily): per instance × opened day × team × attendant × clock × time basis:
-- count, mean, median and p90 (linear interpolation) of the clock, its distribution in the fixed
-- buckets, and the SLA outcome counts and achievement % = met / (met + breached).
-- docs/metrics.md § Clocks (count, mean, median, p90, buckets < 1 min … > 24 h; date anchor = the day
-- the conversation opened), § SLA (pending left out of the achievement until decided; breaches per
-- target with how long past it; each basis row decides met/breached on its own time: the calendar
-- row on calendar time, the business row on business time) and § Attribution (FRT → first responder
-- and their team at that moment; next reply → the attendant who answered, else the assignee;
-- resolution and handling → the assignee at resolution and their team). Bucket edges and the
-- achievement are the macros of gold/stats.py. Rolled-up rows carry team_id / attendant_id = '*':
-- (instance, day), (instance, day, team) and (instance, day, team, attendant).
with v as (
    select instance_id, opened_day as day, first_responder_team_id as team_id, first_responder_id as attendant_id,
           'first_response' as clock, frt_seconds as cal, frt_business_seconds as bus,
           frt_sla_calendar as sla_cal, frt_sla_business as sla_bus,
           frt_overdue_calendar_seconds as overdue_cal, frt_overdue_business_seconds as overdue_bus
    from gold.conversation_facts where origin = 'inbound'
    union all
    select instance_id, opened_day, team_id, coalesce(responder_id, assignee_id), 'next_reply',
           reply_seconds, reply_business_seconds, sla_outcome_calendar, sla_outcome_business,
           sla_overdue_calendar_seconds, sla_overdue_business_seconds
    from gold.reply_waits
    union all
    select instance_id, opened_day, team_id, assignee_id, 'resolution',
           resolution_seconds, resolution_business_seconds, resolution_sla_calendar, resolution_sla_business,
           resolution_overdue_calendar_seconds, resolution_overdue_business_seconds
    from gold.conversation_facts
    union all
    select instance_id, opened_day, team_id, assignee_id, 'handling', handling_seconds, handling_business_seconds,
           null, null, null, null
    from gold.conversation_facts where handling_seconds is not null
),
g as (
    select instance_id, day,
           case when grouping(team_id) = 1 then '*' else team_id end as team_id,
           case when grouping(attendant_id) = 1 then '*' else attendant_id end as attendant_id,
           clock,
           count(cal) as cal_count, avg(cal) as cal_mean, quantile_cont(cal, [0.5, 0.9]) as cal_q,
           bucket_counts(cal) as cal_b,
           count(*) filter (where sla_cal = 'met') as cal_met,
           count(*) filter (where sla_cal = 'breached') as cal_breached,
           count(*) filter (where sla_cal = 'pending') as cal_pending,
           sum(overdue_cal) filter (where sla_cal = 'breached') as cal_overdue,
           count(bus) as bus_count, avg(bus) as bus_mean, quantile_cont(bus, [0.5, 0.9]) as bus_q,
           bucket_counts(bus) as bus_b,
           count(*) filter (where sla_bus = 'met') as bus_met,
           count(*) filter (where sla_bus = 'breached') as bus_breached,
           count(*) filter (where sla_bus = 'pending') as bus_pending,
           sum(overdue_bus) filter (where sla_bus = 'breached') as bus_overdue
    from (
        select instance_id, day, coalesce(team_id, 'none') as team_id,
               coalesce(attendant_id, 'unattributed') as attendant_id, clock, cal, bus, sla_cal, sla_bus,
               overdue_cal, overdue_bus
        from v
    )
    group by grouping sets (
        (instance_id, day, clock),
        (instance_id, day, team_id, clock),
        (instance_id, day, team_id, attendant_id, clock)
    )
),
b as (
    select instance_id, day, team_id, attendant_id, clock, 'calendar' as basis,
           cal_count as n, cal_mean as mean_seconds, cal_q as q, cal_b as buckets,
           cal_met as met, cal_breached as breached, cal_pending as pending, cal_overdue as overdue
    from g
    union all
    select instance_id, day, team_id, attendant_id, clock, 'business',
           bus_count, bus_mean, bus_q, bus_b, bus_met, bus_breached, bus_pending, bus_overdue
    from g
)
select instance_id, day, team_id, attendant_id, clock, basis,
       n::bigint as count, mean_seconds, q[1] as median_seconds, q[2] as p90_seconds,
       buckets[1]::bigint as bucket_lt_1m,
       buckets[2]::bigint as bucket_1_5m,
       buckets[3]::bigint as bucket_5_15m,
       buckets[4]::bigint as bucket_15_30m,
       buckets[5]::bigint as bucket_30_60m,
       buckets[6]::bigint as bucket_1_4h,
       buckets[7]::bigint as bucket_4_24h,
       buckets[8]::bigint as bucket_gt_24h,
       met::bigint as sla_met, breached::bigint as sla_breached, pending::bigint as sla_pending,
       achievement_pct(met, breached) as achievement_pct, overdue as breached_overdue_seconds
from b
