-- browse_abandonment: the browsing events (Product Viewed, Products Searched) in
-- (:since, :as_of] of customers with at least two of them in that window — one row per event.
-- The trigger transform `browse_local_days` (relance.campaigns.shopper_steps) groups them by
-- the customer's LOCAL calendar day (SQL cannot portably), keeps the days with two events or
-- more and no cart activity nor order from that local midnight up to :as_of, and returns one
-- trigger per (customer, local browsing day): trigger_id 'browse|<local day>', trigger_at =
-- its local midnight (a step delay of 34h = 10:00 local the next day).
-- Parameters: :as_of, :since (keep the lookback ≥ 3 days: a local day spans up to 50 UTC hours).
-- Returns customer_id, occurred_at, event, properties (the search query), timezone,
-- last_cart_at (latest Product Added / Checkout Started up to :as_of), last_ordered_at.
WITH browse AS (
    SELECT customer_id, occurred_at, event, properties
    FROM events
    WHERE event IN ('Product Viewed', 'Products Searched')
      AND customer_id IS NOT NULL
      AND occurred_at > :since
      AND occurred_at <= :as_of
),
browsers AS (
    SELECT customer_id FROM browse GROUP BY customer_id HAVING COUNT(*) >= 2
),
last_cart AS (
    SELECT e.customer_id, MAX(e.occurred_at) AS last_cart_at
    FROM events e
    JOIN browsers b ON b.customer_id = e.customer_id
    WHERE e.event IN ('Product Added', 'Checkout Started')
      AND e.occurred_at <= :as_of
    GROUP BY e.customer_id
),
last_order AS (
    SELECT o.customer_id, MAX(o.ordered_at) AS last_ordered_at
    FROM orders o
    JOIN browsers b ON b.customer_id = o.customer_id
    WHERE o.ordered_at <= :as_of
    GROUP BY o.customer_id
)
SELECT e.customer_id, e.occurred_at, e.event, e.properties, c.timezone,
       lc.last_cart_at, lo.last_ordered_at
FROM browse e
JOIN browsers b ON b.customer_id = e.customer_id
LEFT JOIN customers c ON c.customer_id = e.customer_id
LEFT JOIN last_cart lc ON lc.customer_id = e.customer_id
LEFT JOIN last_order lo ON lo.customer_id = e.customer_id
ORDER BY e.customer_id, e.occurred_at
