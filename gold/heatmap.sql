-- heatmap (gold/heatmap): inbound messages and conversations opened per instance × local day ×
-- weekday × hour. docs/metrics.md § Volume ("Heatmap: inbound messages and conversations opened by weekday
-- × hour (instance time zone)"). Kept per day so any date range can be summed to weekday × hour.
with msgs as (
    select instance_id, day, weekday, hour, count(*)::bigint as inbound_messages
    from work.messages_enriched where direction = 'inbound'
    group by all
),
convs as (
    select instance_id, opened_day as day, opened_weekday as weekday, opened_hour as hour,
           count(*)::bigint as conversations_opened
    from gold.conversation_facts
    group by all
)
select instance_id, day, weekday, hour,
       coalesce(m.inbound_messages, 0)::bigint as inbound_messages,
       coalesce(c.conversations_opened, 0)::bigint as conversations_opened
from msgs m full outer join convs c using (instance_id, day, weekday, hour)
order by instance_id, day, hour
