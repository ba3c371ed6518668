-- back_in_stock: one trigger per (customer, product, restock) as of :as_of.
-- A restock is a catalog snapshot dated in (:since, :as_of] where the product is 'in_stock'
-- while its previous snapshot was not (product_snapshots.previous_*, stored at load:
-- the view product_snapshot_changes without its LAG over every snapshot).
-- The customer wants it when, while it was out of stock, they asked to be told (Back In Stock
-- Requested), wishlisted or carted it: an event in (:since, the restock day) such that the
-- snapshot in effect at the event (the latest dated on or before it; none known counts too)
-- and every later one before the restock were not in stock. So a request is kept for as long
-- as the product stays out of stock, up to the campaign's lookback (90 days), and a request
-- from an earlier out-of-stock spell, answered by an earlier restock, is not carried over.
-- Guests count like customers: a guest who left an email has customer_id 'guest-' + 16 hex of
-- sha256(email) (relance.ingest.identity) and a customers row with that email.
-- Not if they ordered the product after that interest.
-- Identity: trigger_id = '<product_id>|<snapshot date>' (the exit product_bought reads the
-- product from it). Timing: trigger_local_date = the restock day in the customer's time
-- zone, so a step delay of 10h means 10:00 local that day.
-- Parameters: :as_of, :since. Returns customer_id, trigger_id, trigger_local_date, timezone,
-- product_id, restocked_on (context) and consent_basis: 'request' when the customer
-- explicitly asked for this alert (Back In Stock Requested: consent for that one alert,
-- migration 0007), else NULL (a wishlist or a cart needs marketing consent).
WITH restocks AS (
    SELECT product_id, snapshot_date
    -- previous_* stored at load: the view product_snapshot_changes without its LAG
    FROM product_snapshots
    WHERE availability = 'in_stock'
      AND previous_availability IS NOT NULL
      AND previous_availability <> 'in_stock'
      AND snapshot_date > :since
      AND snapshot_date <= :as_of
),
interest AS (
    SELECT r.product_id, r.snapshot_date, e.customer_id, e.event, e.occurred_at
    FROM restocks r
    JOIN events e ON e.product_id = r.product_id
    WHERE e.event IN ('Back In Stock Requested', 'Product Added to Wishlist', 'Product Added')
      AND e.customer_id IS NOT NULL
      AND e.occurred_at > :since
      AND e.occurred_at < r.snapshot_date
      AND NOT EXISTS (
            SELECT 1 FROM product_snapshots s
            WHERE s.product_id = r.product_id
              AND s.availability = 'in_stock'
              AND s.snapshot_date < r.snapshot_date
              AND s.snapshot_date >= (SELECT MAX(s0.snapshot_date) FROM product_snapshots s0
                                      WHERE s0.product_id = r.product_id
                                        AND s0.snapshot_date <= e.occurred_at))
),
wanted AS (
    SELECT product_id, snapshot_date, customer_id, MIN(occurred_at) AS first_interest_at,
           MAX(CASE WHEN event = 'Back In Stock Requested' THEN 1 ELSE 0 END) AS requested
    FROM interest
    GROUP BY product_id, snapshot_date, customer_id
)
SELECT w.customer_id,
       w.product_id || '|' || CAST(w.snapshot_date AS TEXT) AS trigger_id,
       w.snapshot_date AS trigger_local_date,
       c.timezone,
       w.product_id,
       CAST(w.snapshot_date AS TEXT) AS restocked_on,
       CASE WHEN w.requested = 1 THEN 'request' END AS consent_basis
FROM wanted w
LEFT JOIN customers c ON c.customer_id = w.customer_id
WHERE NOT EXISTS (
        SELECT 1 FROM orders o JOIN order_items oi ON oi.order_id = o.order_id
        WHERE o.customer_id = w.customer_id
          AND oi.product_id = w.product_id
          AND o.ordered_at > w.first_interest_at
          AND o.ordered_at <= :as_of)
