-- A/B results of the newest campaign_report day (the ab_results view), in display order.
-- No parameters. Grain: one row per (campaign_id, step, variant).
SELECT *
FROM ab_results
ORDER BY campaign_id, step, variant
