-- Holdout lift of the newest campaign_report day (the holdout_lift view), in display order.
-- No parameters. Grain: one row per campaign_id.
SELECT *
FROM holdout_lift
ORDER BY campaign_id
