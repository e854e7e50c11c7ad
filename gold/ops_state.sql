-- chat_assignee (work table): who was assigned to each chat from each ops action on (docs/metrics.md
-- § Attribution: "messages sent from the phone app are attributed to the assignee at that moment").
-- assign/transfer set the assignee; unassign and resolve clear it. messages_enriched only uses actions
-- taken since the message's conversation opened (an action applies to the conversation open at its
-- time, so an expired conversation's assignee does not carry over to the next one).
select instance_id, contact_key, occurred_at,
       case when action in ('unassign', 'resolve') then null else attendant_id end as attendant_id
from silver.ops_events
where contact_key is not null and action in ('assign', 'transfer', 'unassign', 'resolve')
