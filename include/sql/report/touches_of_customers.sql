-- Opens and clicks of marketing messages sent to some customers, in [:since, :until): the
-- touches last-touch attribution chooses from (receipts and other transactional mail are
-- never credited). Parameters: :customer_ids (list), :since, :until.
-- Grain: one row per Open or Click event.
SELECT ml.customer_id, ml.send_key, ml.campaign_id, ml.step, ml.variant,
       me.event_type, me.occurred_at
FROM message_events me
JOIN message_log ml ON ml.send_key = me.send_key
WHERE ml.customer_id IN :customer_ids
  AND ml.category = 'marketing'
  AND ml.status = 'sent'
  AND me.event_type IN ('Open', 'Click')
  AND me.occurred_at >= :since AND me.occurred_at < :until
