-- Erasure: values dropped from the customer's calls (a bad phone, a bad birthday …) are
-- forgotten; the row (field, reason) stays for ingest statistics.
-- Parameters: :customer_id, :anonymous_ids (list).
UPDATE dropped_fields SET value = NULL
WHERE value IS NOT NULL
  AND message_id IN (SELECT message_id FROM events
                     WHERE customer_id = :customer_id OR anonymous_id IN :anonymous_ids)
