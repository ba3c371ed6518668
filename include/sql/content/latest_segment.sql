-- Content "latest_segment": the customer's most recent segment (customer_segments, from
-- build_segments) computed on or before :as_of; none if never segmented.
-- Parameters: :customer_id, :as_of. One row or none.
SELECT segment, purchase_propensity, as_of
FROM customer_segments
WHERE customer_id = :customer_id
  AND as_of <= :as_of
ORDER BY as_of DESC
LIMIT 1
