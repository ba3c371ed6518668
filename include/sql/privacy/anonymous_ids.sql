-- The anonymous ids joined to a customer (identity links, and ids their events carried).
-- One row per anonymous_id. Parameters: :customer_id.
SELECT anonymous_id FROM identity_links WHERE customer_id = :customer_id
UNION
SELECT anonymous_id FROM events WHERE customer_id = :customer_id AND anonymous_id IS NOT NULL
