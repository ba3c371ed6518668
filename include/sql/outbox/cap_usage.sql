-- Frequency-cap usage: every marketing message that counts against a customer's caps (each
-- channel has its own: the channel says which) —
-- reserved (claimed, being sent, sent or of unknown fate) in the 7 days before :as_of — with
-- what it was, so a capped row can name the message that won. The local calendar day of each
-- reservation is worked out in Python (relance.dispatch.caps), in the customer's time zone.
-- Parameters: :customer_ids (list), :week_start. One row per counted message.
SELECT customer_id, channel, send_key, campaign_id, step_name, trigger_id, cap_reserved_at
FROM message_log
WHERE customer_id IN :customer_ids
  AND cap_reserved_at > :week_start
  AND status IN (SELECT s.status FROM message_statuses s WHERE s.counts_against_caps = TRUE)
ORDER BY customer_id, cap_reserved_at, send_key
