-- Erasure: the customer's row (address, names, phone, birthday, locale, time zone, consent).
-- Parameters: :customer_id.
DELETE FROM customers WHERE customer_id = :customer_id
