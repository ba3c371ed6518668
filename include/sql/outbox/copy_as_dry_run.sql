-- Records what a dry run would have decided, as a separate 'dry_run' row (its own send_key,
-- prefixed by the run) that no rule, cap or sender ever picks up.
-- Parameters: :dry_key, :send_key, :reason, :as_of.
INSERT INTO message_log (send_key, campaign_id, campaign_version, step, step_name, variant, customer_id,
                         email, locale, category, priority, trigger_id, trigger_at, due_at, context,
                         status, reason, planned_at, planned_by, decided_at, attempts, channel, channel_options, phone)
SELECT :dry_key, campaign_id, campaign_version, step, step_name, variant, customer_id,
       email, locale, category, priority, trigger_id, trigger_at, due_at, context,
       'dry_run', :reason, planned_at, planned_by, :as_of, 0, channel, channel_options, phone
FROM message_log
WHERE send_key = :send_key
ON CONFLICT (send_key) DO UPDATE SET reason = excluded.reason, decided_at = excluded.decided_at
