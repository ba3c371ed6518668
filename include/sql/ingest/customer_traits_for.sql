-- The current traits of some customers, one row per (customer_id, trait).
-- Parameters: :customer_ids (list).
SELECT customer_id, trait, value, observed_at, observed_us
FROM customer_traits
WHERE customer_id IN :customer_ids
ORDER BY customer_id, trait
