-- The due rows still 'planned' after the rules, in sending order: priority first, then age.
-- Parameters: :as_of.
SELECT send_key
FROM message_log
WHERE status = 'planned'
  AND due_at <= :as_of
ORDER BY priority DESC, due_at, send_key
