-- Erasure: the latest value of each of the customer's traits. Parameters: :customer_id.
DELETE FROM customer_traits WHERE customer_id = :customer_id
