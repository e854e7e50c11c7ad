-- attendant_teams (work table): an attendant's team over time, from the ops action log (docs/metrics.md
-- § Attribution: "Team = the attendant's team at that moment (from the assignment log), not today's").
-- The team at time t is the team of the latest action at or before t that named the attendant.
select instance_id, attendant_id, occurred_at, team_id
from silver.ops_events
where attendant_id is not null and team_id is not null
