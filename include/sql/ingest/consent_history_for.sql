-- The consent history of some customers, oldest first (to the microsecond; ties: messageId),
-- folded in Python into customers.email_opt_in / sms_opt_in (an explicit unsubscribe holds
-- until an opt-in from a consent source). Parameters: :customer_ids (list).
-- Grain: one row per consent_changes row.
SELECT customer_id, channel, opt_in, source, changed_at, changed_us, message_id
FROM consent_changes
WHERE customer_id IN :customer_ids
ORDER BY customer_id, channel, changed_at, changed_us, message_id
