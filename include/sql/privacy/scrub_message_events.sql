-- Erasure: the recipient address and the SES payload (headers, recipients, bounce and complaint
-- details) of every SES event about the customer's messages or their addresses. Type, time,
-- send_key and MessageId stay (delivery and engagement rates still add up).
-- Parameters: :customer_id, :emails (list, lower-cased).
UPDATE message_events SET email = NULL, detail = NULL
WHERE (email IS NOT NULL OR detail IS NOT NULL)
  AND (send_key IN (SELECT send_key FROM message_log WHERE customer_id = :customer_id)
       OR provider_message_id IN (SELECT provider_message_id FROM message_log
                                  WHERE customer_id = :customer_id AND provider_message_id IS NOT NULL)
       OR email IN :emails)
