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
long as (
    select instance_id, day, coalesce(team_id, 'none') as team_id, coalesce(attendant_id, 'unattributed') as attendant_id,
           clock, 'calendar' as basis, cal as seconds, sla, overdue
    from v
    union all
    select instance_id, day, coalesce(team_id, 'none'), coalesce(attendant_id, 'unattributed'),
           clock, 'business', bus, sla, overdue
    from v
)
select instance_id, day,
       case when grouping(team_id) = 1 then '*' else team_id end as team_id,
       case when grouping(attendant_id) = 1 then '*' else attendant_id end as attendant_id,
       clock, basis,
       count(seconds)::bigint as count,
       avg(seconds) as mean_seconds,
       quantile_cont(seconds, 0.5) as median_seconds,
       quantile_cont(seconds, 0.9) as p90_seconds,
       count(*) filter (where duration_bucket(seconds) = '<1m')::bigint as bucket_lt_1m,
       count(*) filter (where duration_bucket(seconds) = '1-5m')::bigint as bucket_1_5m,
       count(*) filter (where duration_bucket(seconds) = '5-15m')::bigint as bucket_5_15m,
       count(*) filter (where duration_bucket(seconds) = '15-30m')::bigint as bucket_15_30m,
       count(*) filter (where duration_bucket(seconds) = '30-60m')::bigint as bucket_30_60m,
       count(*) filter (where duration_bucket(seconds) = '1-4h')::bigint as bucket_1_4h,
       count(*) filter (where duration_bucket(seconds) = '4-24h')::bigint as bucket_4_24h,
       count(*) filter (where duration_bucket(seconds) = '>24h')::bigint as bucket_gt_24h,
       count(*) filter (where sla = 'met')::bigint as sla_met,
       count(*) filter (where sla = 'breached')::bigint as sla_breached,
       count(*) filter (where sla = 'pending')::bigint as sla_pending,
       100.0 * count(*) filter (where sla = 'met')
           / nullif(count(*) filter (where sla in ('met', 'breached')), 0) as achievement_pct,
       sum(overdue) filter (where sla = 'breached') as breached_overdue_seconds
from long
group by grouping sets (
    (instance_id, day, clock, basis),
    (instance_id, day, team_id, clock, basis),
    (instance_id, day, team_id, attendant_id, clock, basis)
)
order by instance_id, day, team_id, attendant_id, clock, basis
