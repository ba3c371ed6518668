-- Digests instead of silence (issue 12): a message that lost the daily cap, of a campaign with
-- digest: true, is folded into the customer's next digest — 'digested', pointing at the
-- digest's send_key — instead of 'capped'. It never counts against the caps (the digest does).
-- Parameters: :send_key, :digest_send_key, :reason, :as_of.
UPDATE message_log
SET status = 'digested', digest_send_key = :digest_send_key, reason = :reason, decided_at = :as_of
WHERE send_key = :send_key
  AND status IN ('planned', 'deferred_quiet_hours')
