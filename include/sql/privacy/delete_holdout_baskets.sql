-- Erasure: the customer in the recommender's evaluation scratch table. Parameters: :customer_id.
DELETE FROM ml_holdout_baskets WHERE customer_id = :customer_id
