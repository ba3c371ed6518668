-- Every address a customer is known by, in the warehouse's own columns (the identify payloads
-- of events are read by relance.privacy, which parses their JSON). One row per (source, email).
-- Parameters: :customer_id.
SELECT email FROM customers WHERE customer_id = :customer_id AND email IS NOT NULL
UNION
SELECT value AS email FROM customer_traits WHERE customer_id = :customer_id AND trait = 'email' AND value IS NOT NULL
UNION
SELECT email FROM message_log WHERE customer_id = :customer_id AND email IS NOT NULL
