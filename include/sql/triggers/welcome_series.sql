-- welcome_series: one trigger per customer who signed up (Signed Up) in (:since, :as_of] and
-- had not ordered before signing up. Identity: trigger_id = 'welcome' — one welcome series
-- per customer, ever, whatever Signed Up calls follow; timing: trigger_at = their first
-- Signed Up in the window (steps at +0, +3 days, +10 days).
-- Parameters: :as_of, :since (keep the lookback longer than the last step's delay).
-- Returns customer_id, trigger_id, trigger_at.
WITH signups AS (
    SELECT customer_id, MIN(occurred_at) AS signed_up_at
    FROM events
    WHERE event = 'Signed Up'
      AND customer_id IS NOT NULL
      AND occurred_at > :since
      AND occurred_at <= :as_of
    GROUP BY customer_id
)
SELECT s.customer_id,
       'welcome' AS trigger_id,
       s.signed_up_at AS trigger_at
FROM signups s
WHERE NOT EXISTS (
        SELECT 1 FROM orders o
        WHERE o.customer_id = s.customer_id
          AND o.ordered_at < s.signed_up_at)
