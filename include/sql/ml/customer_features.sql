-- Customer features as of :as_of, for segments and the purchase propensity, using only what
-- was known before :as_of: RFM over the orders placed before it, each with its status *as of*
-- :as_of (a refund or cancellation recorded later — e.g. inside a propensity label window —
-- does not change them: orders.status is today's status, so an order whose status changed at
-- or after :as_of takes its latest Order Refunded / Order Cancelled event before :as_of, else
-- 'completed'), and shopping behaviour over the 30 days before it. Recency and tenure are
-- derived in Python from the timestamps returned here (no date arithmetic in SQL).
-- Population: customers known before :as_of — created before it (trait created_at), or with
-- an order or behaviour before it; with :snapshot = 0 (scoring the day itself) also those with
-- no created_at trait. Never by updated_at (a later identify would move a customer in or out).
-- Parameters: :as_of (exclusive end), :d30, :d90, :d180, :d365 (as_of minus 30, 90, 180, 365 days),
-- :snapshot (1 = a past snapshot for training or evaluation, 0 = scoring as of the run).
-- Grain: one row per customer.
WITH orders_as_of AS (
    SELECT o.customer_id, o.ordered_at, o.revenue,
           CASE WHEN o.status_at IS NULL OR o.status_at < :as_of THEN o.status
                ELSE COALESCE((
                    SELECT CASE e.event WHEN 'Order Refunded' THEN 'refunded' ELSE 'cancelled' END
                    FROM events e
                    WHERE e.order_id = o.order_id AND e.event IN ('Order Refunded', 'Order Cancelled')
                      AND e.occurred_at < :as_of
                    ORDER BY e.occurred_at DESC, e.occurred_us DESC, e.message_id DESC
                    LIMIT 1), 'completed')
           END AS status
    FROM orders o
    WHERE o.ordered_at < :as_of
),
o AS (
    SELECT customer_id,
           COUNT(*) AS frequency,
           SUM(CASE WHEN status = 'completed' THEN COALESCE(revenue, 0) ELSE 0 END) AS monetary,
           SUM(CASE WHEN status = 'refunded' THEN 1 ELSE 0 END) AS refunds,
           SUM(CASE WHEN ordered_at >= :d90 THEN 1 ELSE 0 END) AS orders_90d,
           SUM(CASE WHEN ordered_at >= :d180 AND ordered_at < :d90 THEN 1 ELSE 0 END) AS orders_prev_90d,
           SUM(CASE WHEN ordered_at >= :d365 THEN 1 ELSE 0 END) AS orders_365d,
           MIN(ordered_at) AS first_order_at,
           MAX(ordered_at) AS last_order_at
    FROM orders_as_of
    WHERE status <> 'cancelled'
    GROUP BY customer_id
),
b AS (
    SELECT customer_id,
           SUM(CASE WHEN event IN ('Product Viewed', 'Products Searched', 'Product List Viewed') THEN 1 ELSE 0 END)
               AS views_30d,
           SUM(CASE WHEN event IN ('Product Added', 'Checkout Started') THEN 1 ELSE 0 END) AS carts_30d,
           SUM(CASE WHEN event = 'Product Added to Wishlist' THEN 1 ELSE 0 END) AS wishlists_30d,
           MAX(occurred_at) AS last_seen_at
    FROM events
    WHERE occurred_at >= :d30 AND occurred_at < :as_of AND customer_id IS NOT NULL
      AND event IN ('Product Viewed', 'Products Searched', 'Product List Viewed', 'Product Added',
                    'Checkout Started', 'Product Added to Wishlist')
    GROUP BY customer_id
)
SELECT c.customer_id,
       CASE WHEN c.created_at < :as_of THEN c.created_at END AS created_at,
       COALESCE(o.frequency, 0) AS frequency,
       COALESCE(o.monetary, 0) AS monetary,
       COALESCE(o.refunds, 0) AS refunds,
       COALESCE(o.orders_90d, 0) AS orders_90d,
       COALESCE(o.orders_prev_90d, 0) AS orders_prev_90d,
       COALESCE(o.orders_365d, 0) AS orders_365d,
       o.first_order_at,
       o.last_order_at,
       COALESCE(b.views_30d, 0) AS views_30d,
       COALESCE(b.carts_30d, 0) AS carts_30d,
       COALESCE(b.wishlists_30d, 0) AS wishlists_30d,
       b.last_seen_at
FROM customers c
LEFT JOIN o ON o.customer_id = c.customer_id
LEFT JOIN b ON b.customer_id = c.customer_id
WHERE c.created_at < :as_of
   OR o.customer_id IS NOT NULL
   OR b.customer_id IS NOT NULL
   OR (c.created_at IS NULL AND :snapshot = 0)
ORDER BY c.customer_id
