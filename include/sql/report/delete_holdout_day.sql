-- Empties one report day's snapshot of report_holdout_lift before it is written again.
-- Parameters: :report_date. Grain: rows of report_holdout_lift.
DELETE FROM report_holdout_lift WHERE report_date = :report_date
