-- back_in_stock: one trigger per (customer, product, restock) as of :as_of.
-- A restock is a catalog snapshot where the product is 'in_stock' while its previous
-- snapshot was not (view product_snapshot_changes), dated after :since.
-- The customer is interested when, in the 30 days (:since, the restock day) before it, they
-- asked to be told (Back In Stock Requested), wishlisted or carted it, and have not bought
-- it since that interest.
-- Identity: trigger_id = '<product_id>|<snapshot date>' (the exit product_bought reads the
-- product from it). Timing: trigger_local_date = the restock day in the customer's time
-- zone, so a step delay of 10h means 10:00 local that day.
-- Parameters: :as_of, :since. Returns customer_id, trigger_id, trigger_local_date, timezone,
-- product_id, restocked_on (context).
WITH restocks AS (
    SELECT product_id, snapshot_date
    FROM product_snapshot_changes
    WHERE availability = 'in_stock'
      AND previous_availability IS NOT NULL
      AND previous_availability <> 'in_stock'
      AND snapshot_date > :since
      AND snapshot_date <= :as_of
),
interest AS (
    SELECT r.product_id, r.snapshot_date, e.customer_id, MIN(e.occurred_at) AS first_interest_at
    FROM restocks r
    JOIN events e ON e.product_id = r.product_id
    WHERE e.event IN ('Back In Stock Requested', 'Product Added to Wishlist', 'Product Added')
      AND e.customer_id IS NOT NULL
      AND e.occurred_at > :since
      AND e.occurred_at < r.snapshot_date
    GROUP BY r.product_id, r.snapshot_date, e.customer_id
)
SELECT i.customer_id,
       i.product_id || '|' || CAST(i.snapshot_date AS TEXT) AS trigger_id,
       i.snapshot_date AS trigger_local_date,
       c.timezone,
       i.product_id,
       CAST(i.snapshot_date AS TEXT) AS restocked_on
FROM interest i
LEFT JOIN customers c ON c.customer_id = i.customer_id
WHERE NOT EXISTS (
        SELECT 1 FROM orders o JOIN order_items oi ON oi.order_id = o.order_id
        WHERE o.customer_id = i.customer_id
          AND oi.product_id = i.product_id
          AND o.ordered_at > i.first_interest_at
          AND o.ordered_at <= :as_of)
