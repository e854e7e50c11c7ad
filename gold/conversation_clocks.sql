-- conversation_clocks (work table): silver conversations with the instants every clock starts and stops
-- (calendar), the schedule version in force when each clock started, and the SLA target per clock.
-- docs/metrics.md § Clocks (FRT, resolution, handling; business-hours schedules are effective-dated: an
-- interval is measured with the schedule in force when it started) and § SLA (policy per instance,
-- optionally per team). `frt_end`/`res_end` are where a clock stands for SLA purposes: its stop, the
-- conversation's close when it stopped without one, or the build's as-of instant while running.
with c as (
    select c.*, i.timezone, p.as_of,
           coalesce(c.resolved_at, c.expired_at) as ended_at
    from silver.conversations c
    join cfg.instances i using (instance_id)
    cross join cfg.params p
)
select c.conversation_id, c.instance_id, c.contact_key, c.origin, c.status, c.timezone,
       c.opened_at, c.first_response_at, c.first_response_message_id, c.first_responder_id,
       c.resolved_at, c.resolved_by, c.expired_at, c.closed_at, c.ended_at, c.last_message_at,
       c.first_assigned_at, c.assignee_id, c.team_id, c.inbound_count, c.outbound_count,
       c.previous_conversation_id, coalesce(c.is_reopen, false) as is_reopen,
       coalesce(c.reopened, false) as reopened, c.as_of,
       case when c.origin = 'inbound'
            then coalesce(c.first_response_at, c.ended_at, greatest(c.as_of, c.opened_at)) end as frt_end,
       coalesce(c.resolved_at, case when c.status = 'open' then greatest(c.as_of, c.opened_at) end) as res_end,
       vo.version_id as v_open,
       va.version_id as v_assign
from c
asof left join work.versions vo on vo.instance_id = c.instance_id and c.opened_at >= vo.from_utc
asof left join work.versions va
    on va.instance_id = c.instance_id and coalesce(c.first_assigned_at, c.opened_at) >= va.from_utc
