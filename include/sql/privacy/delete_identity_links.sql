-- Erasure: the anonymous ids joined to the customer. Parameters: :customer_id, :anonymous_ids (list).
DELETE FROM identity_links WHERE customer_id = :customer_id OR anonymous_id IN :anonymous_ids
