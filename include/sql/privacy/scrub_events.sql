-- Erasure: the payloads of the customer's events (identify traits, track properties) and their
-- anonymous ids. The rows stay, with their type, name, time, product and order ids, so the
-- deduplication on messageId still recognises a file loaded again and counts stay right.
-- Parameters: :customer_id, :anonymous_ids (list).
UPDATE events SET properties = '{}', anonymous_id = NULL
WHERE (customer_id = :customer_id OR anonymous_id IN :anonymous_ids)
  AND (properties <> '{}' OR properties IS NULL OR anonymous_id IS NOT NULL)
