-- calls_daily (gold/calls_daily): calls per instance × local day × media (voice/video) × chat type:
-- offered, accepted, rejected, missed and still ringing. docs/metrics.md § Volume ("Calls (from `call`
-- events, one per call id): offered, accepted, rejected, missed; voice/video"), anchored to the day
-- the call was offered in the instance time zone. Every call is offered; the outcome splits it.
select c.instance_id, timezone(i.timezone, c.offered_at)::date as day,
       case when c.is_video then 'video' else 'voice' end as media,
       case when c.is_group then 'group' else 'direct' end as chat_type,
       count(*)::bigint as offered,
       count(*) filter (where c.outcome = 'accepted')::bigint as accepted,
       count(*) filter (where c.outcome = 'rejected')::bigint as rejected,
       count(*) filter (where c.outcome = 'missed')::bigint as missed,
       count(*) filter (where c.outcome not in ('accepted', 'rejected', 'missed') or c.outcome is null)::bigint
           as ringing
from silver.calls c
join cfg.instances i using (instance_id)
where c.offered_at is not null
group by all
order by instance_id, day, media, chat_type
