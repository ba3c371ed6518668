-- The funnel of each campaign over the whole outbox (the headline figures of `relance report`,
-- the demo and the Campaigns page): planned, sent, delivered, opened, clicked, converted,
-- revenue, with bounces, complaints and holdouts, summed from the campaign_daily view.
-- No parameters. Grain: one row per campaign_id.
SELECT campaign_id,
       SUM(planned) AS planned, SUM(sent) AS sent, SUM(holdout) AS holdout,
       SUM(delivered) AS delivered, SUM(opened) AS opened, SUM(clicked) AS clicked,
       SUM(bounced) AS bounced, SUM(complained) AS complained,
       SUM(converted) AS converted, SUM(conversions) AS conversions, SUM(revenue) AS revenue
FROM campaign_daily
GROUP BY campaign_id
ORDER BY campaign_id
