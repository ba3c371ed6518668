-- Empties one report day's snapshot of report_ab_results before it is written again.
-- Parameters: :report_date. Grain: rows of report_ab_results.
DELETE FROM report_ab_results WHERE report_date = :report_date
