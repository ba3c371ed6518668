-- Models (issue 14 item 8): "expected value" in the cap arbitration means value. build_segments
-- writes each customer's expected order value next to the purchase propensity; the dispatcher
-- ranks by propensity × expected order value (include/sql/outbox/due_candidates.sql).
ALTER TABLE customer_segments ADD COLUMN expected_order_value DOUBLE PRECISION;
