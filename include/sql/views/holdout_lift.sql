-- View holdout_lift: per campaign with a holdout, as of the newest campaign_report day
-- (report_holdout_lift keeps every day's snapshot). Intent-to-treat: customers whose decision
-- was 'holdout' vs customers assigned to treatment; outcome = completed orders within
-- window_days after the customer's first decision. Lifts: treated - holdout (absolute,
-- Newcombe / Welch 95 % intervals) and treated / holdout - 1 (relative, log intervals).
-- Statistics computed in Python by campaign_report.
SELECT h.report_date, h.campaign_id, h.window_days,
       h.treated_customers, h.treated_converted, h.treated_revenue,
       h.holdout_customers, h.holdout_converted, h.holdout_revenue,
       h.treated_conversion_rate, h.holdout_conversion_rate,
       h.conversion_lift, h.conversion_lift_low, h.conversion_lift_high,
       h.conversion_lift_relative, h.conversion_lift_relative_low, h.conversion_lift_relative_high,
       h.conversion_p_value,
       h.treated_revenue_per_customer, h.holdout_revenue_per_customer,
       h.revenue_lift, h.revenue_lift_low, h.revenue_lift_high,
       h.revenue_lift_relative, h.revenue_lift_relative_low, h.revenue_lift_relative_high,
       h.confidence
FROM report_holdout_lift h
WHERE h.report_date = (SELECT MAX(x.report_date) FROM report_holdout_lift x)
