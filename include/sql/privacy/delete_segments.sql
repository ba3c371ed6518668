-- Erasure: the customer's RFM segments and propensity scores. Parameters: :customer_id.
DELETE FROM customer_segments WHERE customer_id = :customer_id
