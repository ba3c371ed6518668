-- The traits of some customers folded into the fields of customers, one row per customer:
-- each trait's current value (NULL when the customer has none), and the time of the latest
-- trait (updated_at before the consent history). One row per customer instead of one per
-- (customer_id, trait): refresh_customers reads every customer an onboarding file touches.
-- Parameters: :customer_ids (list). Grain: one row per customer that has traits.
SELECT customer_id,
       MAX(CASE WHEN trait = 'email' THEN value END) AS email,
       MAX(CASE WHEN trait = 'first_name' THEN value END) AS first_name,
       MAX(CASE WHEN trait = 'last_name' THEN value END) AS last_name,
       MAX(CASE WHEN trait = 'phone' THEN value END) AS phone,
       MAX(CASE WHEN trait = 'birthday' THEN value END) AS birthday,
       MAX(CASE WHEN trait = 'locale' THEN value END) AS locale,
       MAX(CASE WHEN trait = 'context_locale' THEN value END) AS context_locale,
       MAX(CASE WHEN trait = 'timezone' THEN value END) AS timezone,
       MAX(CASE WHEN trait = 'context_timezone' THEN value END) AS context_timezone,
       MAX(CASE WHEN trait = 'created_at' THEN value END) AS created_at,
       MAX(observed_at) AS updated_at
FROM customer_traits
WHERE customer_id IN :customer_ids
GROUP BY customer_id
ORDER BY customer_id
