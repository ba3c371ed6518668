-- Order lines for the recommender, read once per training (or evaluation) and shared by the
-- feedback (orders weigh 5, time-decayed), the repeat purchases (consumables and their
-- intervals), the buyers per product and the co-purchase complements: every line of the orders
-- placed in [:since, :as_of) (cancelled ones excluded). With :holdout_run = an evaluation's run
-- id, a customer held out in that run counts only with the orders placed before their
-- cutoff_at (ml_holdout_baskets: their held-out basket teaches nothing); '' = no evaluation.
-- Parameters: :since (as_of minus the recommender's two-year history), :as_of, :holdout_run.
-- Grain: one row per order line (an order may hold the same product on two lines).
SELECT o.customer_id, oi.product_id, o.order_id, o.ordered_at, oi.quantity
FROM orders o
JOIN order_items oi ON oi.order_id = o.order_id
LEFT JOIN ml_holdout_baskets h ON h.run_id = :holdout_run AND h.customer_id = o.customer_id
WHERE o.status <> 'cancelled' AND o.ordered_at >= :since AND o.ordered_at < :as_of
  AND (h.customer_id IS NULL OR o.ordered_at < h.cutoff_at)
