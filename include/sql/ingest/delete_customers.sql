-- Removes customers rows about to be rebuilt from customer_traits (same transaction).
-- Parameters: :customer_ids (list).
DELETE FROM customers WHERE customer_id IN :customer_ids
