-- cart_abandonment: one trigger per open cart as of :as_of.
-- An open cart is the cart activity (Product Added, Checkout Started) a customer had after
-- their last order, within (:since, :as_of]. Its identity (trigger_id) is its first event, so
-- one cart gets one series of reminders; the reminders count from its latest activity
-- (trigger_at), so a shopper still adding items is not reminded mid-session.
-- Returns customer_id, trigger_id, trigger_at, cart_started_at (context).
WITH last_order AS (
    SELECT customer_id, MAX(ordered_at) AS last_ordered_at
    FROM orders
    WHERE ordered_at <= :as_of
    GROUP BY customer_id
),
open_cart_events AS (
    SELECT e.customer_id, e.message_id, e.occurred_at
    FROM events e
    LEFT JOIN last_order lo ON lo.customer_id = e.customer_id
    WHERE e.event IN ('Product Added', 'Checkout Started')
      AND e.customer_id IS NOT NULL
      AND e.occurred_at > :since
      AND e.occurred_at <= :as_of
      AND (lo.last_ordered_at IS NULL OR e.occurred_at > lo.last_ordered_at)
),
carts AS (
    SELECT customer_id, MIN(occurred_at) AS cart_started_at, MAX(occurred_at) AS last_activity_at
    FROM open_cart_events
    GROUP BY customer_id
)
SELECT c.customer_id,
       (SELECT MIN(o.message_id) FROM open_cart_events o
        WHERE o.customer_id = c.customer_id AND o.occurred_at = c.cart_started_at) AS trigger_id,
       c.last_activity_at AS trigger_at,
       c.cart_started_at
FROM carts c
