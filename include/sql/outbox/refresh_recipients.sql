-- Copies the customer's current address, phone and locale onto the due rows just before deciding,
-- and re-chooses the channel of a step that has several (channel_options, in order of
-- preference: 'email sms' or 'sms email'): the first the customer can be reached on — an
-- address (a number) and, for marketing, consent on that channel — else the first.
-- Parameters: :as_of, :campaign_ids (the campaigns this dispatcher run decides).
UPDATE message_log
SET email = (SELECT c.email FROM customers c WHERE c.customer_id = message_log.customer_id),
    locale = (SELECT c.locale FROM customers c WHERE c.customer_id = message_log.customer_id),
    phone = (SELECT c.phone FROM customers c WHERE c.customer_id = message_log.customer_id),
    channel = CASE
        WHEN channel_options IS NULL THEN channel
        WHEN EXISTS (SELECT 1 FROM customers c
                     WHERE c.customer_id = message_log.customer_id
                       AND ((channel_options LIKE 'email%' AND c.email <> ''
                             AND (message_log.category = 'transactional' OR c.email_opt_in = TRUE))
                         OR (channel_options LIKE 'sms%' AND c.phone <> ''
                             AND (message_log.category = 'transactional' OR c.sms_opt_in = TRUE))))
            THEN CASE WHEN channel_options LIKE 'email%' THEN 'email' ELSE 'sms' END
        WHEN EXISTS (SELECT 1 FROM customers c
                     WHERE c.customer_id = message_log.customer_id
                       AND ((channel_options LIKE '%sms' AND c.phone <> ''
                             AND (message_log.category = 'transactional' OR c.sms_opt_in = TRUE))
                         OR (channel_options LIKE '%email' AND c.email <> ''
                             AND (message_log.category = 'transactional' OR c.email_opt_in = TRUE))))
            THEN CASE WHEN channel_options LIKE '%sms' THEN 'sms' ELSE 'email' END
        ELSE CASE WHEN channel_options LIKE 'email%' THEN 'email' ELSE 'sms' END
    END
WHERE status IN ('planned', 'deferred_quiet_hours')
  AND COALESCE(send_after, due_at) <= :as_of
  AND campaign_id IN :campaign_ids
