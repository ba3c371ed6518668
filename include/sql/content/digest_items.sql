-- Content "digest_items": the messages folded into this digest (status 'digested',
-- digest_send_key = the digest's own send_key), oldest first; relance.dispatch.digests turns
-- each into a section of the digest with its own campaign's content queries.
-- Parameters: :send_key. One row per folded message.
SELECT send_key, campaign_id, step, step_name, variant, customer_id, trigger_id, trigger_at, due_at, context
FROM message_log
WHERE digest_send_key = :send_key
  AND status = 'digested'
ORDER BY due_at, campaign_id, send_key
