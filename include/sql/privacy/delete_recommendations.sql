-- Erasure: the customer's recommendations. Parameters: :customer_id.
DELETE FROM recommendations WHERE customer_id = :customer_id
