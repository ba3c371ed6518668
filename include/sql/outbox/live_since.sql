-- The instant Relance went live (relance_state 'live_since', ISO 8601 UTC); none before the
-- first planner run. Parameters: none. One row or none.
SELECT value FROM relance_state WHERE key = 'live_since'
