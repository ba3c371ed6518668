-- Deliverability guard (SPEC §7.5): while the bounce or complaint rate is over its threshold,
-- the due marketing rows are held — they keep their waiting status (due again next run) and
-- carry the reason; decided_at marks the run that held them. Transactional rows are untouched.
-- Parameters: :as_of, :campaign_ids, :reason. Grain: updates message_log rows.
UPDATE message_log
SET reason = :reason, decided_at = :as_of
WHERE status IN ('planned', 'deferred_quiet_hours')
  AND category = 'marketing'
  AND COALESCE(send_after, due_at) <= :as_of
  AND campaign_id IN :campaign_ids
