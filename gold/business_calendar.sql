-- business_calendar: every open span of every instance's business-hours schedule as UTC instants.
-- Implements docs/metrics.md § Clocks ("business-hours value": weekly schedule + holidays in the instance
-- time zone) and § Time (buckets in the instance zone, DST-correct: each local opening/closing time is
-- converted with the zone rules of that very day). One row per (instance, schedule version, local day,
-- open span); holidays have no rows. `cum_before` = business seconds of the same version before the
-- span, so the business seconds of [a, b] measured with version v are BH_v(b) - BH_v(a), where
-- BH_v(t) = cum_before + clamp(t - start_utc, 0, seconds) of the last span starting at or before t
-- (see clock_points.sql). The calendar covers the first opened conversation to the build's as-of day.
with bounds as (
    select c.instance_id,
           min(timezone(i.timezone, c.opened_at))::date - 1 as first_day,
           greatest(max(timezone(i.timezone, coalesce(c.resolved_at, c.expired_at, c.opened_at)))::date,
                    max(timezone(i.timezone, p.as_of))::date) + 2 as last_day
    from silver.conversations c
    join cfg.instances i using (instance_id)
    cross join cfg.params p
    group by c.instance_id
),
days as (
    select instance_id, unnest(generate_series(first_day, last_day, interval 1 day))::date as day
    from bounds
),
spans as (
    select d.instance_id, s.version_id, d.day,
           timezone(i.timezone, d.day::timestamp + s.open_min * interval 1 minute) as start_utc,
           timezone(i.timezone, d.day::timestamp + s.close_min * interval 1 minute) as end_utc
    from days d
    join cfg.instances i using (instance_id)
    join cfg.schedule s on s.instance_id = d.instance_id and s.weekday = isodow(d.day)
    where not exists (select 1 from cfg.holidays h where h.instance_id = d.instance_id and h.day = d.day)
)
select instance_id, version_id, day, start_utc, end_utc,
       epoch(end_utc) - epoch(start_utc) as seconds,
       coalesce(sum(epoch(end_utc) - epoch(start_utc)) over (
           partition by instance_id, version_id order by start_utc
           rows between unbounded preceding and 1 preceding), 0) as cum_before
from spans
order by instance_id, version_id, start_utc
