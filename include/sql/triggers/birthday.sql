-- birthday: one trigger per customer whose birthday (birthday_mmdd) falls on the UTC day
-- before, of or after :as_of — together these cover the customer's local day in every time
-- zone. A 29 February birthday is celebrated on 28 February in common years (the *_leap
-- parameters). Identity: trigger_id = 'birthday|<date>', once a year; timing:
-- trigger_local_date = the birthday this year in the customer's time zone (a delay of 9h
-- is 09:00 local). Parameters: :day_before_date, :day_before_mmdd, :day_before_mmdd_leap,
-- :as_of_date, :as_of_mmdd, :as_of_mmdd_leap, :day_after_date, :day_after_mmdd,
-- :day_after_mmdd_leap (planner calendar_params). Returns customer_id, trigger_id,
-- trigger_local_date, timezone.
WITH birthdays AS (
    SELECT customer_id, timezone,
           CASE WHEN birthday_mmdd IN (:day_before_mmdd, :day_before_mmdd_leap) THEN :day_before_date
                WHEN birthday_mmdd IN (:as_of_mmdd, :as_of_mmdd_leap) THEN :as_of_date
                ELSE :day_after_date END AS birthday_date
    FROM customers
    WHERE birthday_mmdd IN (:day_before_mmdd, :day_before_mmdd_leap, :as_of_mmdd, :as_of_mmdd_leap,
                            :day_after_mmdd, :day_after_mmdd_leap)
)
SELECT customer_id,
       'birthday|' || birthday_date AS trigger_id,
       birthday_date AS trigger_local_date,
       timezone
FROM birthdays
