-- The payloads (traits of identify calls, properties of track calls) of a customer's events and
-- of the anonymous events joined to them: relance.privacy looks for addresses in them before
-- scrubbing them. One row per event. Parameters: :customer_id, :anonymous_ids (list).
SELECT properties FROM events
WHERE (customer_id = :customer_id OR anonymous_id IN :anonymous_ids)
  AND properties IS NOT NULL AND properties <> '{}'
