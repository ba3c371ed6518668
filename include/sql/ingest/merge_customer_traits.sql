-- Merges one batch's identify traits into customer_traits.
-- A trait keeps the value of the call with the latest timestamp, to the microsecond
-- (observed_at, then observed_us; ties: the larger messageId), whatever order the calls arrive
-- in: late or replayed identifies never roll a trait back. A messageId already loaded from another
-- file is a duplicate delivery, whatever its payload says: its traits are not merged (a producer
-- reusing a messageId for other traits changes nothing; events keep the first).
-- Parameters: :batch_id (an ingest batch: the file's URI, events.source_file; the SES consent
-- traits of relance.feedback use a batch id of their own, their message ids are SES event ids).
-- Grain of customer_traits: one row per (customer_id, trait).
INSERT INTO customer_traits (customer_id, trait, value, observed_at, observed_us, message_id)
SELECT customer_id, trait, value, observed_at, observed_us, message_id
FROM stage_customer_traits
WHERE batch_id = :batch_id
  AND NOT EXISTS (SELECT 1 FROM events e
                  WHERE e.message_id = stage_customer_traits.message_id AND e.source_file <> :batch_id)
ON CONFLICT (customer_id, trait) DO UPDATE SET
    value = excluded.value,
    observed_at = excluded.observed_at,
    observed_us = excluded.observed_us,
    message_id = excluded.message_id
WHERE excluded.observed_at > customer_traits.observed_at
   OR (excluded.observed_at = customer_traits.observed_at AND excluded.observed_us > customer_traits.observed_us)
   OR (excluded.observed_at = customer_traits.observed_at AND excluded.observed_us = customer_traits.observed_us
       AND excluded.message_id > customer_traits.message_id)
