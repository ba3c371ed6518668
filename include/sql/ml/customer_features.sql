-- Customer features as of :as_of, for segments and the purchase propensity: RFM over the
-- orders placed before :as_of (cancelled ones excluded) and shopping behaviour over the 30 days
-- before it. Recency and tenure are derived in Python from the timestamps returned here (no
-- date arithmetic in SQL).
-- Parameters: :as_of (exclusive end), :d30, :d90, :d365 (as_of minus 30, 90, 365 days).
-- Grain: one row per customer created before :as_of.
WITH o AS (
    SELECT customer_id,
           COUNT(*) AS frequency,
           SUM(CASE WHEN status = 'completed' THEN COALESCE(revenue, 0) ELSE 0 END) AS monetary,
           SUM(CASE WHEN status = 'refunded' THEN 1 ELSE 0 END) AS refunds,
           SUM(CASE WHEN ordered_at >= :d90 THEN 1 ELSE 0 END) AS orders_90d,
           SUM(CASE WHEN ordered_at >= :d365 THEN 1 ELSE 0 END) AS orders_365d,
           MIN(ordered_at) AS first_order_at,
           MAX(ordered_at) AS last_order_at
    FROM orders
    WHERE ordered_at < :as_of AND status <> 'cancelled'
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
       c.created_at,
       COALESCE(o.frequency, 0) AS frequency,
       COALESCE(o.monetary, 0) AS monetary,
       COALESCE(o.refunds, 0) AS refunds,
       COALESCE(o.orders_90d, 0) AS orders_90d,
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
WHERE COALESCE(c.created_at, o.first_order_at, c.updated_at) < :as_of
ORDER BY c.customer_id
