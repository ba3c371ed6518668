-- vip_rewards: one trigger per customer whose latest segment (customer_segments on or before
-- :as_of) is 'champions', once per calendar month. Identity: trigger_id = 'vip|<YYYY-MM>';
-- timing: trigger_local_date = the day of :as_of in the customer's time zone, so the perks go
-- out at 10:00 local on the first day of the month they are a champion (the first run that
-- finds the step due wins; later days map to the same send_key).
-- Parameters: :as_of, :as_of_date, :as_of_month. Returns customer_id, trigger_id,
-- trigger_local_date, timezone, segment (context).
WITH latest AS (
    SELECT customer_id, MAX(as_of) AS as_of
    FROM customer_segments
    WHERE as_of <= :as_of
    GROUP BY customer_id
)
SELECT s.customer_id,
       'vip|' || :as_of_month AS trigger_id,
       :as_of_date AS trigger_local_date,
       c.timezone,
       s.segment
FROM latest l
JOIN customer_segments s ON s.customer_id = l.customer_id AND s.as_of = l.as_of
LEFT JOIN customers c ON c.customer_id = s.customer_id
WHERE s.segment = 'champions'
