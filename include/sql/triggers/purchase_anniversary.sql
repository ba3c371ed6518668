-- purchase_anniversary: one trigger per completed order in (:since, :as_of] holding a gift
-- product. The shop's gift category: the catalog category (first level of product_type)
-- names flowers or gifts (fleur, flower, cadeau, gift), vases excepted (accessories, not
-- gifts). Identity: trigger_id = the order id; timing: trigger_at = the order time, and the
-- step's delay (344 days = one year less three weeks) puts the reminder three weeks before
-- the first anniversary (a day early when a 29 February lies in between).
-- Parameters: :as_of, :since (keep the lookback a little longer than the delay), :due1_from …
-- :due4_to (relance.campaigns.planner.due_windows: only orders with the step due now).
-- Returns customer_id, trigger_id, trigger_at, order_id, gift_product_id (context).
SELECT o.customer_id,
       o.order_id   AS trigger_id,
       o.ordered_at AS trigger_at,
       o.order_id,
       MIN(oi.product_id) AS gift_product_id
FROM orders o
JOIN order_items oi ON oi.order_id = o.order_id
JOIN products p ON p.product_id = oi.product_id
WHERE o.ordered_at > :since
  AND o.ordered_at <= :as_of
  AND ((o.ordered_at > :due1_from AND o.ordered_at <= :due1_to)
    OR (o.ordered_at > :due2_from AND o.ordered_at <= :due2_to)
    OR (o.ordered_at > :due3_from AND o.ordered_at <= :due3_to)
    OR (o.ordered_at > :due4_from AND o.ordered_at <= :due4_to))
  AND o.status = 'completed'
  AND (LOWER(p.category) LIKE '%fleur%' OR LOWER(p.category) LIKE '%flower%'
       OR LOWER(p.category) LIKE '%cadeau%' OR LOWER(p.category) LIKE '%gift%')
  AND LOWER(COALESCE(p.product_type, '')) NOT LIKE '%vase%'
GROUP BY o.customer_id, o.order_id, o.ordered_at
