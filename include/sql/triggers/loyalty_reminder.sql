-- loyalty_reminder: the points balance and what it buys (100 points = 5 €), as of :as_of.
-- Two kinds of trigger instance, one row each:
--   * 'tier|<message id>': a Loyalty Points Updated in (:since, :as_of] that is the
--     customer's latest and takes the balance into a new 100-point tier (a new 5 € voucher
--     is within reach);
--   * 'quarter|<YYYY-Qn>': customers with a positive balance and no update since the
--     quarter began (:quarter_start_date), once per quarter.
-- Timing (both): trigger_local_date = the day of :as_of in the customer's time zone, so with
-- a 10h delay the email goes at 10:00 local (at once if the update came later that day, the
-- next day if it came more than max_lateness after 10:00); the first run that finds the step
-- due wins, later days map to the same send_key.
-- points_balance lives in the event's JSON properties: it is read with portable string
-- functions (the key's position found through a small numbers table), since SQLite and
-- PostgreSQL share no JSON function (a fractional balance is made whole). Only each
-- customer's last two updates are parsed.
-- Parameters: :as_of, :since, :as_of_date, :as_of_quarter, :quarter_start_date.
-- Returns customer_id, trigger_id, trigger_local_date, timezone,
-- points_balance, points_updated_at (context).
WITH RECURSIVE positions(n) AS (
    SELECT 1
    UNION ALL
    SELECT n + 1 FROM positions WHERE n < 400
),
updates AS (
    SELECT message_id, customer_id, occurred_at, properties,
           ROW_NUMBER() OVER (PARTITION BY customer_id ORDER BY occurred_at DESC, message_id DESC) AS recency
    FROM events
    WHERE event = 'Loyalty Points Updated'
      AND customer_id IS NOT NULL
      AND occurred_at <= :as_of
),
recent AS (
    SELECT * FROM updates WHERE recency <= 2
),
value_start AS (
    SELECT r.message_id, MIN(p.n) + 17 AS first_char
    FROM recent r
    JOIN positions p ON SUBSTR(r.properties, p.n, 17) = '"points_balance":'
    GROUP BY r.message_id
),
value_end AS (
    SELECT s.message_id, s.first_char, MIN(p.n) AS end_char
    FROM value_start s
    JOIN recent r ON r.message_id = s.message_id
    JOIN positions p ON p.n > s.first_char AND SUBSTR(r.properties, p.n, 1) IN (',', '}')
    GROUP BY s.message_id, s.first_char
),
balances AS (
    SELECT r.customer_id, r.message_id, r.occurred_at, r.recency,
           CAST(CAST(TRIM(REPLACE(SUBSTR(r.properties, v.first_char, v.end_char - v.first_char), '"', ''))
                     AS DOUBLE PRECISION) AS INTEGER) AS points_balance
    FROM recent r
    JOIN value_end v ON v.message_id = r.message_id
),
latest AS (
    SELECT cur.customer_id, cur.message_id, cur.occurred_at, cur.points_balance,
           COALESCE(prev.points_balance, 0) AS previous_balance
    FROM balances cur
    LEFT JOIN balances prev ON prev.customer_id = cur.customer_id AND prev.recency = 2
    WHERE cur.recency = 1
)
SELECT l.customer_id,
       'tier|' || l.message_id AS trigger_id,
       :as_of_date AS trigger_local_date,
       c.timezone,
       l.points_balance,
       l.occurred_at AS points_updated_at
FROM latest l
LEFT JOIN customers c ON c.customer_id = l.customer_id
WHERE l.occurred_at > :since
  AND l.points_balance / 100 > l.previous_balance / 100
UNION ALL
SELECT l.customer_id,
       'quarter|' || :as_of_quarter AS trigger_id,
       :as_of_date AS trigger_local_date,
       c.timezone,
       l.points_balance,
       l.occurred_at AS points_updated_at
FROM latest l
LEFT JOIN customers c ON c.customer_id = l.customer_id
WHERE l.points_balance > 0
  AND l.occurred_at < :quarter_start_date
