-- Sets orders.status from the latest Order Refunded / Order Cancelled event of each order,
-- so a refund that arrives before its order (late delivery) is still applied; "latest" is to
-- the microsecond (occurred_at, occurred_us), then messageId.
-- Parameters: :order_ids (list). Orders without such an event stay 'completed'.
UPDATE orders
SET status = CASE (
        SELECT e.event FROM events e
        WHERE e.order_id = orders.order_id AND e.event IN ('Order Refunded', 'Order Cancelled')
        ORDER BY e.occurred_at DESC, e.occurred_us DESC, e.message_id DESC
        LIMIT 1)
        WHEN 'Order Refunded' THEN 'refunded'
        WHEN 'Order Cancelled' THEN 'cancelled'
    END,
    status_at = (
        SELECT MAX(e.occurred_at) FROM events e
        WHERE e.order_id = orders.order_id AND e.event IN ('Order Refunded', 'Order Cancelled'))
WHERE order_id IN :order_ids
  AND EXISTS (
        SELECT 1 FROM events e
        WHERE e.order_id = orders.order_id AND e.event IN ('Order Refunded', 'Order Cancelled'))
