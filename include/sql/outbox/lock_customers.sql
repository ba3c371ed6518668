-- PostgreSQL only: row locks on the customers whose caps a dispatcher run is about to reserve,
-- in a fixed order (no deadlock between overlapping runs). A second run waits here, then
-- counts the first run's reservations. (SQLite: the transaction is BEGIN IMMEDIATE.)
-- Parameters: :customer_ids (list).
SELECT customer_id FROM customers
WHERE customer_id IN :customer_ids
ORDER BY customer_id
FOR UPDATE
