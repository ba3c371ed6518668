-- vip_rewards: one trigger per customer whose latest segment (customer_segments on or before
-- :as_of) is 'champions', once per calendar month. Identity: trigger_id = 'vip|<YYYY-MM>';
-- timing: trigger_local_date = the day of :as_of in the customer's time zone, so the perks go
-- out at 10:00 local on the first day of the month they are a champion (the first run that
-- finds the step due wins; later days map to the same send_key).
-- Parameters: :as_of, :as_of_date, :as_of_month. Returns customer_id, trigger_id,
-- trigger_local_date, timezone, segment (context).
SELECT s.customer_id,
       'vip|' || :as_of_month AS trigger_id,
       :as_of_date AS trigger_local_date,
       c.timezone,
       s.segment
FROM customer_segments s
LEFT JOIN customers c ON c.customer_id = s.customer_id
WHERE s.segment = 'champions'
  AND s.as_of <= :as_of
  -- the customer's latest segment (an index probe per champions row, not a GROUP BY of every
  -- segment ever computed)
  AND NOT EXISTS (SELECT 1 FROM customer_segments later
                  WHERE later.customer_id = s.customer_id
                    AND later.as_of > s.as_of
                    AND later.as_of <= :as_of)
