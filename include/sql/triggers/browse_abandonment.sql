-- browse_abandonment: one trigger per (customer, browsing day) as of :as_of.
-- A browsing day is a UTC calendar day on which the customer viewed a product or searched
-- (Product Viewed, Products Searched) at least twice, and since the first of those events
-- (up to :as_of) put nothing in a cart (Product Added, Checkout Started) and placed no order.
-- Identity: trigger_id = 'browse|<day>', one email per browsing day. Timing:
-- trigger_local_date = that day in the customer's time zone, so a delay of 34h is 10:00 local
-- the next day. Parameters: :as_of, :since (keep the lookback ≥ 3 days).
-- Returns customer_id, trigger_id, trigger_local_date, timezone, browse_started_at,
-- browse_events (context).
WITH browse AS (
    SELECT customer_id, occurred_at, SUBSTR(CAST(occurred_at AS TEXT), 1, 10) AS browse_day
    FROM events
    WHERE event IN ('Product Viewed', 'Products Searched')
      AND customer_id IS NOT NULL
      AND occurred_at > :since
      AND occurred_at <= :as_of
),
days AS (
    SELECT customer_id, browse_day, MIN(occurred_at) AS browse_started_at, COUNT(*) AS browse_events
    FROM browse
    GROUP BY customer_id, browse_day
    HAVING COUNT(*) >= 2
)
SELECT d.customer_id,
       'browse|' || d.browse_day AS trigger_id,
       d.browse_day AS trigger_local_date,
       c.timezone,
       d.browse_started_at,
       d.browse_events
FROM days d
LEFT JOIN customers c ON c.customer_id = d.customer_id
WHERE NOT EXISTS (
        SELECT 1 FROM events e
        WHERE e.customer_id = d.customer_id
          AND e.event IN ('Product Added', 'Checkout Started')
          AND e.occurred_at >= d.browse_started_at
          AND e.occurred_at <= :as_of)
  AND NOT EXISTS (
        SELECT 1 FROM orders o
        WHERE o.customer_id = d.customer_id
          AND o.ordered_at >= d.browse_started_at
          AND o.ordered_at <= :as_of)
