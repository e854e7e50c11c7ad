-- $table (gold/$table), from the shared per-person daily shape gold/people_daily.sql (gold.runner.TEMPLATES
-- fills in the grouping key: attendant_daily by attendant, team_daily by team).
-- Per instance × day × $key: messages sent and conversations resolved (event day), conversations
-- opened that ended up assigned to them, first responses with FRT count/mean/median/p90, resolution
-- count/mean/median/p90 and handling time (durations on the day the conversation opened).
-- docs/metrics.md § Attribution (FRT → first responder and their team at that moment; resolution/handling
-- → assignee at resolution and their team; messages → sender, else assignee at that moment) and
-- § Clocks. attendant_daily: team_id is the team under which the attendant sent most messages that
-- day; no attendant → 'unattributed'. team_daily: no team → 'none'.
with parts as (
    select instance_id, day, $message_key as k, arg_max(team_id, messages) as team_id,
           sum(messages)::bigint as messages_sent,
           null::bigint as conversations_resolved, null::bigint as conversations_assigned,
           null::bigint as first_responses, null::double as frt_mean_seconds, null::double as frt_median_seconds,
           null::double as frt_p90_seconds, null::double as frt_business_median_seconds,
           null::bigint as resolutions, null::double as resolution_mean_seconds,
           null::double as resolution_median_seconds, null::double as resolution_p90_seconds,
           null::double as handling_median_seconds
    from gold.daily_volume where attendant_id is not null
    group by instance_id, day, $message_key
    union all
    select instance_id, resolved_day, $conversation_key, arg_max(team_id, resolved_at), null, count(*), null,
           null, null, null, null, null, null, null, null, null, null
    from gold.conversation_facts where resolved_at is not null
    group by instance_id, resolved_day, $conversation_key
    union all
    select instance_id, opened_day, $conversation_key, arg_max(team_id, opened_at), null, null, count(*),
           null, null, null, null, null, null, null, null, null, null
    from gold.conversation_facts where $conversation_key is not null
    group by instance_id, opened_day, $conversation_key
    union all
    select instance_id, opened_day, $first_response_key, arg_max(first_responder_team_id, first_response_at),
           null, null, null,
           count(*), avg(frt_seconds), quantile_cont(frt_seconds, 0.5), quantile_cont(frt_seconds, 0.9),
           quantile_cont(frt_business_seconds, 0.5), null, null, null, null, null
    from gold.conversation_facts where first_response_at is not null and first_responder_id is not null
    group by instance_id, opened_day, $first_response_key
    union all
    select instance_id, opened_day, $conversation_key, arg_max(team_id, resolved_at), null, null, null,
           null, null, null, null, null,
           count(*), avg(resolution_seconds), quantile_cont(resolution_seconds, 0.5),
           quantile_cont(resolution_seconds, 0.9), quantile_cont(handling_seconds, 0.5)
    from gold.conversation_facts where resolved_at is not null
    group by instance_id, opened_day, $conversation_key
)
select instance_id, day, $key_columns,
       coalesce(max(messages_sent), 0)::bigint as messages_sent,
       coalesce(max(conversations_resolved), 0)::bigint as conversations_resolved,
       coalesce(max(conversations_assigned), 0)::bigint as conversations_assigned,
       coalesce(max(first_responses), 0)::bigint as first_responses,
       max(frt_mean_seconds) as frt_mean_seconds, max(frt_median_seconds) as frt_median_seconds,
       max(frt_p90_seconds) as frt_p90_seconds, max(frt_business_median_seconds) as frt_business_median_seconds,
       coalesce(max(resolutions), 0)::bigint as resolutions,
       max(resolution_mean_seconds) as resolution_mean_seconds,
       max(resolution_median_seconds) as resolution_median_seconds,
       max(resolution_p90_seconds) as resolution_p90_seconds,
       max(handling_median_seconds) as handling_median_seconds
from parts
group by all
order by instance_id, day, $key
