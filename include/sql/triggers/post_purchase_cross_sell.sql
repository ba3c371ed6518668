-- post_purchase_cross_sell: one trigger per completed order placed in (:since, :as_of]
-- (refunded and cancelled orders are left alone). Identity: trigger_id = the order id;
-- timing: trigger_at = the order time (the step's 7-day delay counts from it).
-- Parameters: :as_of, :since, :due1_from … :due4_to (relance.campaigns.planner.due_windows).
-- Returns customer_id, trigger_id, trigger_at, order_id (context).
SELECT o.customer_id,
       o.order_id   AS trigger_id,
       o.ordered_at AS trigger_at,
       o.order_id
FROM orders o
WHERE o.ordered_at > :since
  AND o.ordered_at <= :as_of
  AND ((o.ordered_at > :due1_from AND o.ordered_at <= :due1_to)
    OR (o.ordered_at > :due2_from AND o.ordered_at <= :due2_to)
    OR (o.ordered_at > :due3_from AND o.ordered_at <= :due3_to)
    OR (o.ordered_at > :due4_from AND o.ordered_at <= :due4_to))
  AND o.status = 'completed'
