-- hourly_volume (gold/hourly_volume): messages per instance × local day × local hour × direction ×
-- kind × chat type × attendant × team. docs/metrics.md § Volume ("messages per day and per hour") and
-- § Time (hours in the instance time zone; on DST days an hour may repeat or be missing, and rows
-- follow the wall clock). Same attribution as daily_volume.
select instance_id, day, hour, direction, kind, chat_type, attendant_id, team_id,
       count(*)::bigint as messages,
       count(*) filter (where automated)::bigint as automated_messages
from work.messages_enriched
group by all
