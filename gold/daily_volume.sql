-- daily_volume (gold/daily_volume): messages per instance × day × direction × kind × chat type ×
-- attendant × team. docs/metrics.md § Volume ("messages per day … by direction, kind, chat type, instance,
-- attendant, team") and § Message activity (edited, revoked, reactions; media by kind) with the event-day anchor (the day, in the instance time zone, the message was
-- sent). Each message counts once (silver dedups by instance + key.id); revoked ones still count.
-- reactions: the reactions currently on the messages (silver reaction_count), on the message's day.
-- attendant_id/team_id are set on human outbound messages only (see messages_enriched.sql).
select instance_id, day, direction, kind, chat_type, attendant_id, team_id,
       count(*)::bigint as messages,
       count(*) filter (where automated)::bigint as automated_messages,
       count(*) filter (where revoked)::bigint as revoked_messages,
       count(*) filter (where edited)::bigint as edited_messages,
       sum(reaction_count)::bigint as reactions
from work.messages_enriched
group by all
order by instance_id, day, direction, kind, chat_type, attendant_id, team_id
