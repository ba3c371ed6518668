-- Gives a task's unused slots back: the timeline moves back to :first_unused, but only if it
-- still ends where this task's reservation ended (nobody reserved after it); else 0 rows and
-- the unused slots are simply lost (never a second sender in one slot).
-- Parameters: :limiter_id, :reserved_until, :first_unused (epoch seconds).
UPDATE send_rate_limits
SET next_slot_at = :first_unused
WHERE limiter_id = :limiter_id
  AND next_slot_at = :reserved_until
