-- digest: the messages folded into a digest (status 'digested', issue 12) since :since, one row
-- each, with the digest's send_key they point at; the digest_days transform
-- (relance.campaigns.digest) turns them into one trigger per digest: trigger_id
-- 'digest|<local date>', trigger_local_date (the step's delay counts from its local midnight).
-- Parameters: :since, :as_of. Returns customer_id, digest_send_key, decided_at, timezone.
SELECT m.customer_id, m.digest_send_key, m.decided_at, c.timezone
FROM message_log m
LEFT JOIN customers c ON c.customer_id = m.customer_id
WHERE m.status = 'digested'
  AND m.decided_at > :since
  AND m.decided_at <= :as_of
ORDER BY m.customer_id, m.digest_send_key
