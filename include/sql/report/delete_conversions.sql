-- Empties the attribution of some report days before they are computed again (a re-run
-- replaces, never duplicates). Parameters: :report_dates (list). Grain: conversions rows.
DELETE FROM conversions WHERE report_date IN :report_dates
