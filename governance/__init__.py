"""Privacy governance across every layer: retention, subject erasure, lake and store scrubbing
(docs/orchestration.md, "Privacy")."""
