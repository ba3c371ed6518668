-- The due rows still waiting after the set-based rules, in arbitration order: priority first,
-- then expected value (the customer's latest purchase propensity × expected order value, when
-- build_segments has run; rows written before migration 0017 have no order value: the
-- propensity alone), then age. Only the campaigns this dispatcher knows (:campaign_ids).
-- Parameters: :as_of, :as_of_date, :campaign_ids (list). One row per message.
SELECT m.send_key, m.channel, m.campaign_id, m.step_name, m.trigger_id, m.customer_id, m.category, m.priority, m.due_at, m.send_after,
       c.timezone,
       (SELECT cs.purchase_propensity * COALESCE(cs.expected_order_value, 1.0) FROM customer_segments cs
        WHERE cs.customer_id = m.customer_id AND cs.as_of <= :as_of_date
        ORDER BY cs.as_of DESC LIMIT 1) AS expected_value
FROM message_log m
LEFT JOIN customers c ON c.customer_id = m.customer_id
WHERE m.status IN ('planned', 'deferred_quiet_hours')
  AND COALESCE(m.send_after, m.due_at) <= :as_of
  AND m.campaign_id IN :campaign_ids
ORDER BY m.priority DESC, expected_value DESC NULLS LAST, m.due_at, m.send_key
