-- Propensity label: customers with at least one order in (:start, :end] (cancelled ones
-- excluded). Parameters: :start, :end (end = start + 90 days). Grain: one row per buyer.
SELECT customer_id, COUNT(*) AS orders
FROM orders
WHERE ordered_at > :start AND ordered_at <= :end AND status <> 'cancelled'
GROUP BY customer_id
