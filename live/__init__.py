"""Live operational store logic: the projector from bronze into the store, assignment, routing,
sending through Evolution, live SLA and the conversation actions attendants take (docs/operations-api.md)."""
