-- The outbox rows (customer, send_key, campaign) behind some SES messages, found by send_key tag
-- or by SES MessageId. Parameters: :send_keys, :message_ids (lists).
-- Grain: one row per message_log row.
SELECT send_key, provider_message_id, customer_id, campaign_id
FROM message_log
WHERE send_key IN :send_keys OR provider_message_id IN :message_ids
