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
-- Parameters: :as_of, :since, :as_of_date, :as_of_quarter, :quarter_start_date, :campaign_id.
-- Returns customer_id, trigger_id, trigger_local_date, timezone,
-- points_balance (whole points now), points_updated_at (context).
WITH updates AS (
    -- the history of the customers with an update in (:since, :as_of] (a crossing needs the
    -- update before it), not of every member; each row carries the customer's latest balance
    -- and its time (FIRST_VALUE, newest first): no self-join of the history, which PostgreSQL
    -- planned as a nested loop over two CTE scans (33M comparisons at 1M customers)
    SELECT message_id, customer_id, occurred_at, points_balance,
           LAG(points_balance) OVER (PARTITION BY customer_id ORDER BY occurred_at, message_id) AS previous_balance,
           FIRST_VALUE(points_balance) OVER newest_first AS latest_balance,
           FIRST_VALUE(occurred_at) OVER newest_first AS latest_at
    FROM events
    WHERE event = 'Loyalty Points Updated'
      AND customer_id IS NOT NULL
      AND points_balance IS NOT NULL
      AND occurred_at <= :as_of
      AND customer_id IN (SELECT r.customer_id FROM events r
                          WHERE r.event = 'Loyalty Points Updated'
                            AND r.occurred_at > :since
                            AND r.occurred_at <= :as_of)
    WINDOW newest_first AS (PARTITION BY customer_id ORDER BY occurred_at DESC, message_id DESC)
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
crossings AS (
    SELECT t.customer_id, t.message_id, t.tier, t.latest_balance, t.latest_at,
           ROW_NUMBER() OVER (PARTITION BY t.customer_id ORDER BY t.occurred_at DESC, t.message_id DESC) AS latest_first
    FROM tiers t
    WHERE t.occurred_at > :since
      AND t.tier > t.previous_tier
)
SELECT x.customer_id,
       'tier|' || x.message_id AS trigger_id,
       :as_of_date AS trigger_local_date,
       c.timezone,
       CAST(x.latest_balance AS INTEGER)
         - CASE WHEN CAST(x.latest_balance AS INTEGER) > x.latest_balance THEN 1 ELSE 0 END AS points_balance,
       x.latest_at AS points_updated_at
FROM crossings x
LEFT JOIN customers c ON c.customer_id = x.customer_id
WHERE x.latest_first = 1
  AND x.latest_balance >= x.tier * 100
UNION ALL
SELECT q.customer_id,
       'quarter|' || :as_of_quarter AS trigger_id,
       :as_of_date AS trigger_local_date,
       c.timezone,
       CAST(q.points_balance AS INTEGER)
         - CASE WHEN CAST(q.points_balance AS INTEGER) > q.points_balance THEN 1 ELSE 0 END AS points_balance,
       q.occurred_at AS points_updated_at
FROM (
    -- every member's latest update, except the members whose quarterly row is already in the
    -- outbox (planned, sent or decided otherwise: the same send_key would be skipped anyway),
    -- so after the quarter's first day this returns the few members not yet reached
    SELECT e.customer_id, e.occurred_at, e.points_balance,
           ROW_NUMBER() OVER (PARTITION BY e.customer_id ORDER BY e.occurred_at DESC, e.message_id DESC) AS recency
    FROM events e
    WHERE e.event = 'Loyalty Points Updated'
      AND e.customer_id IS NOT NULL
      AND e.points_balance IS NOT NULL
      AND e.occurred_at <= :as_of
      AND NOT EXISTS (SELECT 1 FROM message_log m
                      WHERE m.customer_id = e.customer_id
                        AND m.campaign_id = :campaign_id
                        AND m.trigger_id = 'quarter|' || :as_of_quarter
                        AND m.status <> 'dry_run')
) q
LEFT JOIN customers c ON c.customer_id = q.customer_id
WHERE q.recency = 1
  AND q.points_balance > 0
  AND q.occurred_at < :quarter_start_date
