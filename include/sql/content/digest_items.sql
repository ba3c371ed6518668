-- Content "digest_items": the messages folded into this digest (status 'digested',
-- digest_send_key = the digest's own send_key), oldest first; relance.dispatch.digests turns
-- each into a section of the digest with its own campaign's content queries. The flags say
-- whether the exit conditions of include/sql/exits/ of the same names hold by now (the
-- customer ordered after the trigger; ordered the trigger's product, '<product_id>|…'): a
-- section whose step's exit holds is left out, as the message itself would have exited.
-- Parameters: :send_key, :as_of. One row per folded message.
SELECT m.send_key, m.campaign_id, m.step, m.step_name, m.variant, m.customer_id, m.trigger_id, m.trigger_at,
       m.due_at, m.context,
       CASE WHEN EXISTS (SELECT 1 FROM orders o
                         WHERE o.customer_id = m.customer_id
                           AND o.ordered_at > m.trigger_at
                           AND o.ordered_at <= :as_of) THEN 1 ELSE 0 END AS order_placed,
       CASE WHEN EXISTS (SELECT 1 FROM orders o
                         JOIN order_items oi ON oi.order_id = o.order_id
                         WHERE o.customer_id = m.customer_id
                           AND o.ordered_at > m.trigger_at
                           AND o.ordered_at <= :as_of
                           AND SUBSTR(m.trigger_id, 1, LENGTH(oi.product_id) + 1) = oi.product_id || '|')
            THEN 1 ELSE 0 END AS product_bought
FROM message_log m
WHERE m.digest_send_key = :send_key
  AND m.status = 'digested'
ORDER BY m.due_at, m.campaign_id, m.send_key
