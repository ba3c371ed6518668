-- cart_abandonment: the cart activity (Product Added, Checkout Started) each customer had
-- after their last order, within (:since, :as_of] — one row per event. The trigger transform
-- `cart_sessions` (relance.campaigns.sessions) cuts these into carts: a pause longer than the
-- series (48 h) starts a new cart; a cart's identity is the event that first planned it (the
-- `planned` flag), else its first event, so an earlier event delivered late never starts a
-- second series; its reminders count from its latest activity.
-- Parameters: :as_of, :since, :campaign_id.
-- Returns customer_id, message_id, occurred_at, planned (1 if a reminder already names this
-- event as its trigger).
SELECT e.customer_id, e.message_id, e.occurred_at,
       CASE WHEN EXISTS (SELECT 1 FROM message_log m
                         WHERE m.campaign_id = :campaign_id
                           AND m.customer_id = e.customer_id
                           AND m.trigger_id = e.message_id) THEN 1 ELSE 0 END AS planned
FROM events e
WHERE e.event IN ('Product Added', 'Checkout Started')
  AND e.customer_id IS NOT NULL
  AND e.occurred_at > :since
  AND e.occurred_at <= :as_of
  -- after the customer's last order up to :as_of: no order from the event on (an index probe
  -- per cart event, not every customer's last order)
  AND NOT EXISTS (SELECT 1 FROM orders o
                  WHERE o.customer_id = e.customer_id
                    AND o.ordered_at >= e.occurred_at
                    AND o.ordered_at <= :as_of)
ORDER BY e.customer_id, e.occurred_at, e.message_id
