-- price_drop: candidate price drops as of :as_of — one row per (interest event, later price
-- cut of its product). A cut is a catalog snapshot dated in (:since, :as_of] whose effective
-- price COALESCE(sale_price, price) is below its previous snapshot's (product_snapshots.previous_price,
-- stored at load: the view product_snapshot_changes without its LAG over every snapshot), with
-- the product in stock. An interest event is a Product Viewed,
-- Product Added or Product Added to Wishlist in (:since, :as_of], before the cut's day, of a
-- customer who has not ordered the product since that event.
-- The trigger transform `price_seen_drops` (relance.campaigns.shopper_steps) reads the price
-- the shopper saw — the `price` in the event's properties (JSON), else the snapshot price in
-- effect at the event (snapshot_price), else the lowest price of the lookback before the cut
-- (lowest_price), prices in another currency than the cut's left out — and keeps the cuts to
-- 90 % or less of it: one trigger per (customer,
-- product, drop), trigger_id '<product_id>|<cut date>' (the exit product_bought reads the
-- product from it), at local midnight of the cut day (a step delay of 10h = 10:00 local).
-- Parameters: :as_of, :since (the 14-day interest window).
-- Returns customer_id, product_id, interest_at, properties, snapshot_price, lowest_price,
-- snapshot_date, new_price, currency, timezone.
WITH cuts AS (
    SELECT product_id, snapshot_date, COALESCE(sale_price, price) AS new_price, currency
    -- previous_* stored at load: the view product_snapshot_changes without its LAG
    FROM product_snapshots
    WHERE previous_price IS NOT NULL
      AND COALESCE(sale_price, price) < previous_price - 0.001
      AND availability = 'in_stock'
      AND snapshot_date > :since
      AND snapshot_date <= :as_of
),
interest AS (
    SELECT e.customer_id, e.product_id, e.occurred_at AS interest_at, e.properties
    FROM events e
    WHERE e.event IN ('Product Viewed', 'Product Added', 'Product Added to Wishlist')
      AND e.customer_id IS NOT NULL
      AND e.occurred_at > :since
      AND e.occurred_at <= :as_of
      AND e.product_id IN (SELECT product_id FROM cuts)
      AND NOT EXISTS (
            SELECT 1 FROM orders o JOIN order_items oi ON oi.order_id = o.order_id
            WHERE o.customer_id = e.customer_id
              AND oi.product_id = e.product_id
              AND o.ordered_at > e.occurred_at
              AND o.ordered_at <= :as_of)
)
SELECT i.customer_id,
       i.product_id,
       i.interest_at,
       i.properties,
       (SELECT COALESCE(s.sale_price, s.price) FROM product_snapshots s
        WHERE s.product_id = i.product_id AND s.snapshot_date <= i.interest_at
          AND COALESCE(s.currency, '') = COALESCE(c.currency, '')
        ORDER BY s.snapshot_date DESC LIMIT 1) AS snapshot_price,
       (SELECT MIN(COALESCE(s.sale_price, s.price)) FROM product_snapshots s
        WHERE s.product_id = i.product_id AND s.snapshot_date > :since
          AND s.snapshot_date < c.snapshot_date
          AND COALESCE(s.currency, '') = COALESCE(c.currency, '')) AS lowest_price,
       c.snapshot_date,
       c.new_price,
       c.currency,
       cu.timezone
FROM interest i
JOIN cuts c ON c.product_id = i.product_id AND c.snapshot_date > i.interest_at
LEFT JOIN customers cu ON cu.customer_id = i.customer_id
ORDER BY i.customer_id, i.product_id, c.snapshot_date, i.interest_at
