-- Records when Relance went live, once: the first planner run's interval start. Later runs
-- (and backfills) leave it alone. Parameters: :value (ISO 8601 UTC), :updated_at.
INSERT INTO relance_state (key, value, updated_at) VALUES ('live_since', :value, :updated_at)
ON CONFLICT (key) DO NOTHING
