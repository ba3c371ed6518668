-- price_drop: one trigger per (customer, product, price drop) as of :as_of.
-- A price drop is a catalog snapshot where the product's effective price
-- COALESCE(sale_price, price) is at least 10 % below its previous snapshot's (consecutive
-- snapshot_dates of that product; 0.001 tolerance for float rounding), dated after :since,
-- with the product in stock. The customer is interested when, in the 14 days (:since, the
-- drop day) before it, they viewed, carted or wishlisted the product, and have not bought it
-- since that interest.
-- Identity: trigger_id = '<product_id>|<snapshot date>' (the exit product_bought reads the
-- product from it). Timing: trigger_local_date = the drop day in the customer's time zone
-- (a step delay of 10h means 10:00 local).
-- Parameters: :as_of, :since. Returns customer_id, trigger_id, trigger_local_date, timezone,
-- product_id, old_price, new_price, currency (context).
WITH drops AS (
    SELECT product_id, snapshot_date, previous_price AS old_price, effective_price AS new_price, currency
    FROM product_snapshot_changes
    WHERE previous_price > 0
      AND effective_price <= previous_price * 0.9 + 0.001
      AND availability = 'in_stock'
      AND snapshot_date > :since
      AND snapshot_date <= :as_of
),
interest AS (
    SELECT d.product_id, d.snapshot_date, e.customer_id, MIN(e.occurred_at) AS first_interest_at
    FROM drops d
    JOIN events e ON e.product_id = d.product_id
    WHERE e.event IN ('Product Viewed', 'Product Added', 'Product Added to Wishlist')
      AND e.customer_id IS NOT NULL
      AND e.occurred_at > :since
      AND e.occurred_at < d.snapshot_date
    GROUP BY d.product_id, d.snapshot_date, e.customer_id
)
SELECT i.customer_id,
       i.product_id || '|' || CAST(i.snapshot_date AS TEXT) AS trigger_id,
       i.snapshot_date AS trigger_local_date,
       c.timezone,
       i.product_id,
       d.old_price,
       d.new_price,
       d.currency
FROM interest i
JOIN drops d ON d.product_id = i.product_id AND d.snapshot_date = i.snapshot_date
LEFT JOIN customers c ON c.customer_id = i.customer_id
WHERE NOT EXISTS (
        SELECT 1 FROM orders o JOIN order_items oi ON oi.order_id = o.order_id
        WHERE o.customer_id = i.customer_id
          AND oi.product_id = i.product_id
          AND o.ordered_at > i.first_interest_at
          AND o.ordered_at <= :as_of)
