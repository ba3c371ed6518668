-- merge_customer_traits.sql for a batch whose calls were all new: every event of the chunk was
-- inserted by this very batch (the caller counted them), so no messageId was loaded from another
-- file and the duplicate-delivery probe into events (one index probe and heap fetch per trait row:
-- most of the server time of an onboarding import) would keep every row. Same merge otherwise:
-- a trait keeps the value of the latest call (observed_at, observed_us, then messageId).
-- Parameters: :batch_id. Grain of customer_traits: one row per (customer_id, trait).
INSERT INTO customer_traits (customer_id, trait, value, observed_at, observed_us, message_id)
SELECT customer_id, trait, value, observed_at, observed_us, message_id
FROM stage_customer_traits
WHERE batch_id = :batch_id
ON CONFLICT (customer_id, trait) DO UPDATE SET
    value = excluded.value,
    observed_at = excluded.observed_at,
    observed_us = excluded.observed_us,
    message_id = excluded.message_id
WHERE excluded.observed_at > customer_traits.observed_at
   OR (excluded.observed_at = customer_traits.observed_at AND excluded.observed_us > customer_traits.observed_us)
   OR (excluded.observed_at = customer_traits.observed_at AND excluded.observed_us = customer_traits.observed_us
       AND excluded.message_id > customer_traits.message_id)
