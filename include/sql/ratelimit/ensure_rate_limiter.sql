-- Creates the timeline of a send-rate limiter if it does not exist yet (idempotent).
-- Parameters: :limiter_id.
INSERT INTO send_rate_limits (limiter_id, next_slot_at)
VALUES (:limiter_id, 0)
ON CONFLICT (limiter_id) DO NOTHING
