-- order_confirmation: one trigger per order completed in (:since, :as_of].
-- Returns customer_id, trigger_id (the order id), trigger_at (order time), order_id, order_total, order_currency (context).
-- Orders imported with an old timestamp fall before :since and never get a receipt.
SELECT o.customer_id,
       o.order_id   AS trigger_id,
       o.ordered_at AS trigger_at,
       o.order_id,
       o.revenue    AS order_total,
       o.currency   AS order_currency
FROM orders o
WHERE o.ordered_at > :since
  AND o.ordered_at <= :as_of
