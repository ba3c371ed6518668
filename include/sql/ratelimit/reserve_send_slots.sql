-- Reserves :slots consecutive send slots, :spacing seconds apart, on the limiter's timeline:
-- they start at the later of :now and the next free slot; the next free slot moves past them.
-- One statement, so atomic: the row lock of the UPDATE on PostgreSQL, BEGIN IMMEDIATE on SQLite.
-- Returns one row: next_slot_at, the end of the slots reserved (epoch seconds).
-- Parameters: :limiter_id, :slots, :spacing (seconds), :now (epoch seconds, wall clock).
UPDATE send_rate_limits
SET next_slot_at = CASE WHEN next_slot_at > :now THEN next_slot_at ELSE :now END + :slots * :spacing
WHERE limiter_id = :limiter_id
RETURNING next_slot_at
