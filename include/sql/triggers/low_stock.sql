-- low_stock: one trigger per (customer, product, low-stock day) as of :as_of.
-- A product runs low on a catalog snapshot where it is in stock with a quantity between 1
-- and 5 while its previous snapshot had more (or no quantity, or was out of stock): one
-- alert per low-stock episode, not one a day; a product's first snapshot is no news.
-- Dated after :since.
-- The customer is interested when, in the 14 days (:since, the low-stock day) before it,
-- they carted or wishlisted the product, and have not bought it since that interest.
-- Identity: trigger_id = '<product_id>|<snapshot date>' (the exit product_bought reads the
-- product from it). Timing: trigger_local_date = that day in the customer's time zone.
-- Parameters: :as_of, :since. Returns customer_id, trigger_id, trigger_local_date, timezone,
-- product_id, stock_quantity (context).
WITH low AS (
    SELECT product_id, snapshot_date, quantity
    -- previous_* stored at load: the view product_snapshot_changes without its LAG
    FROM product_snapshots
    WHERE availability = 'in_stock'
      AND quantity > 0
      AND quantity <= 5
      AND previous_availability IS NOT NULL
      AND (previous_quantity IS NULL OR previous_quantity > 5 OR previous_availability <> 'in_stock')
      AND snapshot_date > :since
      AND snapshot_date <= :as_of
),
interest AS (
    SELECT l.product_id, l.snapshot_date, e.customer_id, MIN(e.occurred_at) AS first_interest_at
    FROM low l
    JOIN events e ON e.product_id = l.product_id
    WHERE e.event IN ('Product Added', 'Product Added to Wishlist')
      AND e.customer_id IS NOT NULL
      AND e.occurred_at > :since
      AND e.occurred_at < l.snapshot_date
    GROUP BY l.product_id, l.snapshot_date, e.customer_id
)
SELECT i.customer_id,
       i.product_id || '|' || CAST(i.snapshot_date AS TEXT) AS trigger_id,
       i.snapshot_date AS trigger_local_date,
       c.timezone,
       i.product_id,
       l.quantity AS stock_quantity
FROM interest i
JOIN low l ON l.product_id = i.product_id AND l.snapshot_date = i.snapshot_date
LEFT JOIN customers c ON c.customer_id = i.customer_id
WHERE NOT EXISTS (
        SELECT 1 FROM orders o JOIN order_items oi ON oi.order_id = o.order_id
        WHERE o.customer_id = i.customer_id
          AND oi.product_id = i.product_id
          AND o.ordered_at > i.first_interest_at
          AND o.ordered_at <= :as_of)
