-- clock_points (work table): the business-hours position BH_v(t) of every instant a clock starts or
-- stops, per schedule version (docs/metrics.md § Clocks, business-hours value). One ASOF join against
-- business_calendar: BH_v(t) = cum_before + clamp(t - start_utc, 0, seconds) of the last span of
-- version v starting at or before t. Business seconds of [a, b] = BH_v(b) - BH_v(a), which is exact
-- across nights, weekends, holidays and DST changes because the spans are real UTC instants.
with pts as (
    select instance_id, v_open as version_id, opened_at as ts from work.conversation_clocks
    union select instance_id, v_open, frt_end from work.conversation_clocks where frt_end is not null
    union select instance_id, v_open, res_end from work.conversation_clocks where res_end is not null
    union select instance_id, v_assign, first_assigned_at from work.conversation_clocks
          where first_assigned_at is not null and resolved_at is not null
    union select instance_id, v_assign, resolved_at from work.conversation_clocks
          where first_assigned_at is not null and resolved_at is not null
    union select instance_id, v_wait, wait_started_at from work.reply_waits_base
    union select instance_id, v_wait, wait_end from work.reply_waits_base where wait_end is not null
)
select p.instance_id, p.version_id, p.ts,
       coalesce(k.cum_before + least(greatest(epoch(p.ts) - epoch(k.start_utc), 0), k.seconds), 0) as bh
from pts p
asof left join work.business_calendar k
    on k.instance_id = p.instance_id and k.version_id = p.version_id and p.ts >= k.start_utc
