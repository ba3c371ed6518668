-- Customers whose address (compared lower-cased) is one of some addresses: a complaint or an
-- SES unsubscribe is about the address, so every customer using it stops getting marketing.
-- Parameters: :emails (list, lower-cased). Grain: one row per customer.
SELECT customer_id, LOWER(email) AS email
FROM customers
WHERE LOWER(email) IN :emails
