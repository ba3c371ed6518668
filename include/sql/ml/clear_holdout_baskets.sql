-- Offline evaluation: removes one run's held-out baskets (before writing them, and when the
-- evaluation is done), and whatever a crashed run left behind more than a day ago. Other runs'
-- rows are never touched, so two evaluations can run at once.
-- Parameters: :run_id, :stale_before. Returns nothing (DELETE).
DELETE FROM ml_holdout_baskets WHERE run_id = :run_id OR created_at < :stale_before
