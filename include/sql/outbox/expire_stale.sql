-- Staleness guard (SPEC §7.7): a message due (or deferred to) more than the campaign's
-- max_lateness before the wall clock is 'expired', not sent — so a backfill of last month
-- recomputes everything but never mails last month's carts.
-- Parameters: :campaign_id, :stale_before (wall clock - max_lateness), :as_of.
UPDATE message_log
SET status = 'expired',
    reason = 'due more than the campaign max_lateness ago',
    decided_at = :as_of
WHERE campaign_id = :campaign_id
  AND status IN ('planned', 'deferred_quiet_hours')
  AND COALESCE(send_after, due_at) <= :as_of
  AND COALESCE(send_after, due_at) < :stale_before
