-- daily_conversations (gold/daily_conversations): conversations opened, resolved, expired, abandoned
-- and reopened per instance × day × team × assignee (opened split by origin: opened_inbound by the
-- customer, opened_outbound by the business), and the backlog (still open) at the end of each day.
-- docs/metrics.md § Volume ("conversations opened, resolved, expired, reopened per day; backlog (open at
-- end of day)") with event-day anchors: opened on the opening day, resolved on the day of
-- resolved_at, expired on the day of expired_at (when the inactivity timeout passed), abandoned on the
-- day the abandonment limit passed (customer-opened, never answered: expired_at); a reopen counts
-- on the day the new conversation opened. Team/assignee are the conversation's (at resolution, or
-- current while open).
with ev as (
    select instance_id, team_id, coalesce(assignee_id, 'unassigned') as assignee_id, opened_day as day,
           1 as opened, (origin = 'inbound')::int as opened_inbound, (origin = 'outbound')::int as opened_outbound,
           is_reopen::int as reopened,
           0 as resolved, 0 as expired, 0 as abandoned, 1 as delta
    from gold.conversation_facts
    union all
    select instance_id, team_id, coalesce(assignee_id, 'unassigned'), resolved_day, 0, 0, 0, 0, 1, 0, 0, -1
    from gold.conversation_facts where resolved_at is not null
    union all
    select instance_id, team_id, coalesce(assignee_id, 'unassigned'), expired_day, 0, 0, 0, 0, 0,
           (status = 'expired')::int, (status = 'abandoned')::int, -1
    from gold.conversation_facts where status in ('expired', 'abandoned') and expired_at is not null
),
agg as (
    select instance_id, team_id, assignee_id, day,
           sum(opened) as opened, sum(opened_inbound) as opened_inbound, sum(opened_outbound) as opened_outbound,
           sum(reopened) as reopened,
           sum(resolved) as resolved, sum(expired) as expired, sum(abandoned) as abandoned, sum(delta) as delta
    from ev group by all
),
span as (
    select a.instance_id, min(a.day) as first_day,
           greatest(max(a.day), max(timezone(i.timezone, p.as_of))::date) as last_day
    from agg a join cfg.instances i using (instance_id) cross join cfg.params p
    group by a.instance_id
),
dims as (select distinct instance_id, team_id, assignee_id from agg),
grid as (
    select d.instance_id, d.team_id, d.assignee_id,
           unnest(generate_series(s.first_day, s.last_day, interval 1 day))::date as day
    from dims d join span s using (instance_id)
),
filled as (
    select g.instance_id, g.team_id, g.assignee_id, g.day,
           coalesce(a.opened, 0)::bigint as opened, coalesce(a.opened_inbound, 0)::bigint as opened_inbound,
           coalesce(a.opened_outbound, 0)::bigint as opened_outbound,
           coalesce(a.reopened, 0)::bigint as reopened, coalesce(a.resolved, 0)::bigint as resolved,
           coalesce(a.expired, 0)::bigint as expired, coalesce(a.abandoned, 0)::bigint as abandoned,
           sum(coalesce(a.delta, 0)) over (
               partition by g.instance_id, g.team_id, g.assignee_id order by g.day
               rows between unbounded preceding and current row)::bigint as backlog
    from grid g
    left join agg a using (instance_id, team_id, assignee_id, day)
)
select * from filled
where opened + resolved + expired + abandoned + reopened > 0 or backlog <> 0
order by instance_id, day, team_id, assignee_id
