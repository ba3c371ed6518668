-- Migration 0016 (issue 12): order status changes, the input of the order_status notices.
-- Runs unchanged on SQLite and PostgreSQL.

-- One row per Segment call that reported a change of an order's status: `Order Updated` with
-- `status` shipped/delivered (with the carrier and tracking of a shipment), `Order Cancelled`,
-- `Order Refunded`. Insert-if-absent on the call's messageId, like events. The same status
-- reported twice (a shop re-sending its webhook) is two rows and one notice: the trigger keeps
-- the first report of each (order_id, status). The order may arrive later than its status
-- (late delivery): nothing here refers to orders.
CREATE TABLE IF NOT EXISTS order_status_changes (
    message_id      TEXT PRIMARY KEY,
    order_id        TEXT NOT NULL,
    status          TEXT NOT NULL CONSTRAINT order_status_changes_status_known
                    CHECK (status IN ('shipped', 'delivered', 'cancelled', 'refunded')),
    changed_at      TIMESTAMP NOT NULL,         -- the call's own timestamp (whole seconds)
    changed_us      INTEGER NOT NULL DEFAULT 0, -- its microseconds
    carrier         TEXT,                       -- as sent (cut to 100 characters), shipped only
    tracking_url    TEXT,                       -- http(s) only; anything else is a dropped_fields row
    tracking_number TEXT
);
CREATE INDEX IF NOT EXISTS order_status_changes_time ON order_status_changes (changed_at);
CREATE INDEX IF NOT EXISTS order_status_changes_order ON order_status_changes (order_id, status);

-- cancellations and refunds already in the warehouse
INSERT INTO order_status_changes (message_id, order_id, status, changed_at, changed_us)
SELECT message_id, order_id,
       CASE event WHEN 'Order Cancelled' THEN 'cancelled' ELSE 'refunded' END,
       occurred_at, occurred_us
FROM events
WHERE event IN ('Order Cancelled', 'Order Refunded') AND order_id IS NOT NULL
ON CONFLICT (message_id) DO NOTHING;
