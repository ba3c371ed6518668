-- View ab_results: A/B results per (campaign_id, step, variant) as of the newest campaign_report
-- day (report_ab_results keeps every day's snapshot). Rates: delivery = delivered / recipients,
-- open and click = over delivered (a click counts as an open), conversion = messages credited
-- with an order / recipients; *_low / *_high bound the 95 % interval (Wilson for rates, normal
-- for revenue per recipient); conversion_p_value: two-proportion z-test against the control
-- (the campaign's first variant). Statistics computed in Python by campaign_report.
SELECT r.report_date, r.campaign_id, r.step, r.step_name, r.variant, r.is_control,
       r.recipients, r.delivered, r.opened, r.clicked, r.converted, r.revenue,
       r.delivery_rate, r.delivery_rate_low, r.delivery_rate_high,
       r.open_rate, r.open_rate_low, r.open_rate_high,
       r.click_rate, r.click_rate_low, r.click_rate_high,
       r.conversion_rate, r.conversion_rate_low, r.conversion_rate_high,
       r.revenue_per_recipient, r.revenue_per_recipient_low, r.revenue_per_recipient_high,
       r.conversion_p_value, r.confidence
FROM report_ab_results r
WHERE r.report_date = (SELECT MAX(x.report_date) FROM report_ab_results x)
