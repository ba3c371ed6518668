-- The rows of one batch still to send, with what the templates need about the customer.
-- Parameters: :batch_id.
SELECT m.send_key, m.campaign_id, m.step, m.step_name, m.variant, m.customer_id, m.email, m.phone, m.channel, m.locale,
       m.category, m.trigger_id, m.trigger_at, m.due_at, m.send_after, m.context, m.status,
       c.first_name, c.last_name
FROM message_log m
LEFT JOIN customers c ON c.customer_id = m.customer_id
WHERE m.batch_id = :batch_id
  AND m.status = 'queued'
ORDER BY m.priority DESC, m.due_at, m.send_key
