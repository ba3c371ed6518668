-- Content "welcome_offer": the offer of the welcome series' day-3 email, decided from what a
-- new sign-up has done since signing up (:trigger_at) — a new customer has no purchase
-- history, so no RFM segment to go by:
--   * 'free_express'  they put something in a cart and did not order: free express shipping
--                     (EXPRESSOFFERT) on top of the 10 % code, to remove the last hurdle;
--   * 'discount_15'   they looked at 3+ products or searches and carted nothing: the code
--                     goes up to 15 % for 7 days (BIENVENUE15);
--   * 'discount_10'   otherwise: a reminder of the 10 % welcome code (BIENVENUE10).
-- Parameters: :customer_id, :trigger_at, :as_of. One row.
WITH activity AS (
    SELECT SUM(CASE WHEN event IN ('Product Added', 'Checkout Started') THEN 1 ELSE 0 END) AS carted,
           SUM(CASE WHEN event IN ('Product Viewed', 'Products Searched') THEN 1 ELSE 0 END) AS browsed
    FROM events
    WHERE customer_id = :customer_id
      AND occurred_at >= :trigger_at
      AND occurred_at <= :as_of
)
SELECT CASE WHEN COALESCE(carted, 0) > 0 THEN 'free_express'
            WHEN COALESCE(browsed, 0) >= 3 THEN 'discount_15'
            ELSE 'discount_10' END AS offer,
       COALESCE(carted, 0) AS carted,
       COALESCE(browsed, 0) AS browsed
FROM activity
