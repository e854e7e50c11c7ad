-- sla_daily (gold/sla_daily): per instance × opened day × team × attendant × clock × time basis:
-- count, mean, median and p90 (linear interpolation) of the clock, its distribution in the fixed
-- buckets, and the SLA outcome counts and achievement % = met / (met + breached).
-- METRICS.md § Clocks (count, mean, median, p90, buckets < 1 min … > 24 h; date anchor = the day
-- the conversation opened), § SLA (pending left out of the achievement until decided; breaches per
-- target with how long past it) and § Attribution (FRT → first responder and their team at that
-- moment; next reply → the attendant who answered, else the assignee; resolution and handling → the
-- assignee at resolution and their team). Rolled-up rows carry team_id / attendant_id = '*':
-- (instance, day), (instance, day, team) and (instance, day, team, attendant).
with v as (
    select instance_id, opened_day as day, first_responder_team_id as team_id, first_responder_id as attendant_id,
           'first_response' as clock, frt_seconds as cal, frt_business_seconds as bus, frt_sla as sla,
           frt_overdue_seconds as overdue
    from gold.conversation_facts where origin = 'inbound'
    union all
    select instance_id, opened_day, team_id, coalesce(responder_id, assignee_id), 'next_reply',
           reply_seconds, reply_business_seconds, sla_outcome, sla_overdue_seconds
    from gold.reply_waits
    union all
    select instance_id, opened_day, team_id, assignee_id, 'resolution',
           resolution_seconds, resolution_business_seconds, resolution_sla, resolution_overdue_seconds
    from gold.conversation_facts
    union all
    select instance_id, opened_day, team_id, assignee_id, 'handling', handling_seconds, handling_business_seconds,
           null, null
    from gold.conversation_facts where handling_seconds is not null
),
g as (
    select instance_id, day,
           case when grouping(team_id) = 1 then '*' else team_id end as team_id,
           case when grouping(attendant_id) = 1 then '*' else attendant_id end as attendant_id,
           clock,
           count(cal) as cal_count,
           avg(cal) as cal_mean,
           quantile_cont(cal, [0.5, 0.9]) as cal_q,
           count(*) filter (where cal < 60) as cal_b_lt_1m,
           count(*) filter (where cal >= 60 and cal < 300) as cal_b_1_5m,
           count(*) filter (where cal >= 300 and cal < 900) as cal_b_5_15m,
           count(*) filter (where cal >= 900 and cal < 1800) as cal_b_15_30m,
           count(*) filter (where cal >= 1800 and cal < 3600) as cal_b_30_60m,
           count(*) filter (where cal >= 3600 and cal < 14400) as cal_b_1_4h,
           count(*) filter (where cal >= 14400 and cal < 86400) as cal_b_4_24h,
           count(*) filter (where cal >= 86400) as cal_b_gt_24h,
           count(bus) as bus_count,
           avg(bus) as bus_mean,
           quantile_cont(bus, [0.5, 0.9]) as bus_q,
           count(*) filter (where bus < 60) as bus_b_lt_1m,
           count(*) filter (where bus >= 60 and bus < 300) as bus_b_1_5m,
           count(*) filter (where bus >= 300 and bus < 900) as bus_b_5_15m,
           count(*) filter (where bus >= 900 and bus < 1800) as bus_b_15_30m,
           count(*) filter (where bus >= 1800 and bus < 3600) as bus_b_30_60m,
           count(*) filter (where bus >= 3600 and bus < 14400) as bus_b_1_4h,
           count(*) filter (where bus >= 14400 and bus < 86400) as bus_b_4_24h,
           count(*) filter (where bus >= 86400) as bus_b_gt_24h,
           count(*) filter (where sla = 'met')::bigint as sla_met,
           count(*) filter (where sla = 'breached')::bigint as sla_breached,
           count(*) filter (where sla = 'pending')::bigint as sla_pending,
           100.0 * count(*) filter (where sla = 'met')
               / nullif(count(*) filter (where sla in ('met', 'breached')), 0) as achievement_pct,
           sum(overdue) filter (where sla = 'breached') as breached_overdue_seconds
    from (
        select instance_id, day, coalesce(team_id, 'none') as team_id,
               coalesce(attendant_id, 'unattributed') as attendant_id, clock, cal, bus, sla, overdue
        from v
    )
    group by grouping sets (
        (instance_id, day, clock),
        (instance_id, day, team_id, clock),
        (instance_id, day, team_id, attendant_id, clock)
    )
)
select * from (
select instance_id, day, team_id, attendant_id, clock, 'calendar' as basis,
       cal_count::bigint as count, cal_mean as mean_seconds, cal_q[1] as median_seconds, cal_q[2] as p90_seconds,
       cal_b_lt_1m::bigint as bucket_lt_1m,
       cal_b_1_5m::bigint as bucket_1_5m,
       cal_b_5_15m::bigint as bucket_5_15m,
       cal_b_15_30m::bigint as bucket_15_30m,
       cal_b_30_60m::bigint as bucket_30_60m,
       cal_b_1_4h::bigint as bucket_1_4h,
       cal_b_4_24h::bigint as bucket_4_24h,
       cal_b_gt_24h::bigint as bucket_gt_24h,
       sla_met, sla_breached, sla_pending, achievement_pct, breached_overdue_seconds
from g
union all
select instance_id, day, team_id, attendant_id, clock, 'business' as basis,
       bus_count::bigint as count, bus_mean as mean_seconds, bus_q[1] as median_seconds, bus_q[2] as p90_seconds,
       bus_b_lt_1m::bigint as bucket_lt_1m,
       bus_b_1_5m::bigint as bucket_1_5m,
       bus_b_5_15m::bigint as bucket_5_15m,
       bus_b_15_30m::bigint as bucket_15_30m,
       bus_b_30_60m::bigint as bucket_30_60m,
       bus_b_1_4h::bigint as bucket_1_4h,
       bus_b_4_24h::bigint as bucket_4_24h,
       bus_b_gt_24h::bigint as bucket_gt_24h,
       sla_met, sla_breached, sla_pending, achievement_pct, breached_overdue_seconds
from g
)
