-- contact_days (gold/contact_days): one row per instance × local day × contact with at least one
-- direct-chat message that day (either direction), with its message count and whether it is the
-- contact's first day ever in the instance. docs/metrics.md § Contacts: a contact is new on the day
-- (instance time zone, event time) of its first message in the instance, returning on later days.
-- Distinct contacts of any period = distinct contact_key over its rows; new = those with a `new` row
-- in it; returning = the others. "Ever" is what silver holds (see docs/metrics.md § Contacts).
with d as (
    select instance_id, contact_key, day, count(*)::bigint as messages
    from work.messages_enriched
    where chat_type = 'direct' and contact_key is not null
    group by all
)
select instance_id, day, contact_key, messages,
       day = min(day) over (partition by instance_id, contact_key) as new
from d
order by instance_id, day, contact_key
