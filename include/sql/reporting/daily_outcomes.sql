-- Sends, skips by reason and deliverability per day, all campaigns together (the Campaigns
-- page's "over time" and deliverability charts), summed from the campaign_daily view
-- (day = UTC date of due_at).
-- No parameters. Grain: one row per day.
SELECT day,
       SUM(planned) AS planned, SUM(sent) AS sent, SUM(waiting) AS waiting,
       SUM(holdout) AS holdout, SUM(capped) AS capped, SUM(digested) AS digested, SUM(suppressed) AS suppressed,
       SUM(no_consent) AS no_consent, SUM(unsubscribed) AS unsubscribed,
       SUM(deferred_quiet_hours) AS deferred_quiet_hours, SUM(expired) AS expired,
       SUM(exited) AS exited, SUM(no_content) AS no_content, SUM(failed) AS failed,
       SUM(unknown) AS unknown,
       SUM(delivered) AS delivered, SUM(bounced) AS bounced, SUM(complained) AS complained
FROM campaign_daily
GROUP BY day
ORDER BY day
