-- loyalty_reminder: the points balance and what it buys (100 points = 5 €), as of :as_of.
-- Two kinds of trigger instance, one row each:
--   * 'tier|<message id>': the customer's latest Loyalty Points Updated in (:since, :as_of]
--     that took the balance into a new 100-point tier (a new 5 € voucher is within reach),
--     as long as the customer still holds that tier. Every update in the window is looked
--     at with the one before it, so a crossing is not lost when another update (points
--     spent, a small top-up) arrives before the email goes;
--   * 'quarter|<YYYY-Qn>': customers with a positive balance and no update since the
--     quarter began (:quarter_start_date), once per quarter.
-- Timing (both): trigger_local_date = the day of :as_of in the customer's time zone, so with
-- a 10h delay the email goes at 10:00 local (at once if the update came later that day, the
-- next day if it came more than max_lateness after 10:00); the first run that finds the step
-- due wins, later days map to the same send_key.
-- events.points_balance is stored by ingest as a number; whole points are
-- CAST(x AS INTEGER) - (CAST(x AS INTEGER) > x), a floor that gives the same answer on
-- SQLite (CAST truncates) and PostgreSQL (CAST rounds).
-- Parameters: :as_of, :since, :as_of_date, :as_of_quarter, :quarter_start_date.
-- Returns customer_id, trigger_id, trigger_local_date, timezone,
-- points_balance (whole points now), points_updated_at (context).
WITH updates AS (
    SELECT message_id, customer_id, occurred_at, points_balance,
           LAG(points_balance) OVER (PARTITION BY customer_id ORDER BY occurred_at, message_id) AS previous_balance,
           ROW_NUMBER() OVER (PARTITION BY customer_id ORDER BY occurred_at DESC, message_id DESC) AS recency
    FROM events
    WHERE event = 'Loyalty Points Updated'
      AND customer_id IS NOT NULL
      AND points_balance IS NOT NULL
      AND occurred_at <= :as_of
),
tiers AS (
    SELECT u.*,
           CAST(points_balance / 100.0 AS INTEGER)
             - CASE WHEN CAST(points_balance / 100.0 AS INTEGER) > points_balance / 100.0 THEN 1 ELSE 0 END AS tier,
           CAST(COALESCE(previous_balance, 0) / 100.0 AS INTEGER)
             - CASE WHEN CAST(COALESCE(previous_balance, 0) / 100.0 AS INTEGER) > COALESCE(previous_balance, 0) / 100.0
                    THEN 1 ELSE 0 END AS previous_tier
    FROM updates u
),
latest AS (
    SELECT customer_id, occurred_at, points_balance,
           CAST(points_balance AS INTEGER)
             - CASE WHEN CAST(points_balance AS INTEGER) > points_balance THEN 1 ELSE 0 END AS whole_points
    FROM tiers
    WHERE recency = 1
),
crossings AS (
    SELECT t.customer_id, t.message_id, t.tier,
           ROW_NUMBER() OVER (PARTITION BY t.customer_id ORDER BY t.occurred_at DESC, t.message_id DESC) AS latest_first
    FROM tiers t
    WHERE t.occurred_at > :since
      AND t.tier > t.previous_tier
)
SELECT x.customer_id,
       'tier|' || x.message_id AS trigger_id,
       :as_of_date AS trigger_local_date,
       c.timezone,
       l.whole_points AS points_balance,
       l.occurred_at AS points_updated_at
FROM crossings x
JOIN latest l ON l.customer_id = x.customer_id
LEFT JOIN customers c ON c.customer_id = x.customer_id
WHERE x.latest_first = 1
  AND l.points_balance >= x.tier * 100
UNION ALL
SELECT l.customer_id,
       'quarter|' || :as_of_quarter AS trigger_id,
       :as_of_date AS trigger_local_date,
       c.timezone,
       l.whole_points AS points_balance,
       l.occurred_at AS points_updated_at
FROM latest l
LEFT JOIN customers c ON c.customer_id = l.customer_id
WHERE l.points_balance > 0
  AND l.occurred_at < :quarter_start_date
