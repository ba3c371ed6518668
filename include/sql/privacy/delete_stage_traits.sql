-- Erasure: traits of the customer left in ingest's scratch table. Parameters: :customer_id.
DELETE FROM stage_customer_traits WHERE customer_id = :customer_id
