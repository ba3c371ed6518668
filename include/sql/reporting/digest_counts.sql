-- Digests (issue 12, item 4) over the whole outbox, for the demo's summary and the Campaigns
-- page: messages folded into a digest (status 'digested', campaigns other than the digest),
-- and the digests (campaign 'digest') sent, still to come, carried over to the next digest
-- (they lost the daily cap themselves: 'digested') or not sent (no consent, no content …).
-- Dry runs left out. No parameters. One row.
SELECT COALESCE(SUM(CASE WHEN status = 'digested' AND campaign_id <> 'digest' THEN 1 ELSE 0 END), 0) AS folded,
       COALESCE(SUM(CASE WHEN campaign_id = 'digest' AND status = 'sent' THEN 1 ELSE 0 END), 0) AS digests_sent,
       COALESCE(SUM(CASE WHEN campaign_id = 'digest'
                          AND status IN ('planned', 'deferred_quiet_hours', 'queued', 'sending')
                         THEN 1 ELSE 0 END), 0) AS digests_waiting,
       COALESCE(SUM(CASE WHEN campaign_id = 'digest' AND status = 'digested' THEN 1 ELSE 0 END), 0)
           AS digests_carried_over,
       COALESCE(SUM(CASE WHEN campaign_id = 'digest'
                          AND status NOT IN ('sent', 'digested', 'planned', 'deferred_quiet_hours', 'queued',
                                             'sending')
                         THEN 1 ELSE 0 END), 0) AS digests_not_sent
FROM message_log
WHERE status <> 'dry_run'
