-- order_status: one trigger per change of an order's status first reported in (:since, :as_of]:
-- shipped and delivered (Order Updated), cancelled (Order Cancelled), refunded (Order Refunded),
-- from order_status_changes (migration 0016).
-- Identity: trigger_id = '<order_id>|<status>', so a status reported again (a re-sent webhook,
-- another messageId) is the same trigger and the same send_key: never a second notice. Of the
-- reports of one (order, status) only the first counts (time, microseconds, then messageId):
-- its time is trigger_at, its carrier and tracking are the notice's.
-- A shipped notice is not planned once the order is known delivered, cancelled or refunded
-- (both reported within the hour, or the shipment reported late): the later news says more.
-- The order must be known (orders): a status that arrives before its order waits for it, within
-- the campaign's max_lateness. The recipient is the order's customer.
-- Parameters: :as_of, :since. Returns customer_id, trigger_id, trigger_at and, as context,
-- order_id, order_status, carrier, tracking_url, tracking_number, order_total, order_currency,
-- ordered_at; history_at = ordered_at: with skip_history, an order placed before go-live gets no
-- notice (the system that confirmed it tells the rest of its story). Grain: one row per (order, status).
SELECT o.customer_id,
       c.order_id || '|' || c.status AS trigger_id,
       c.changed_at                   AS trigger_at,
       c.order_id,
       c.status                       AS order_status,
       c.carrier,
       c.tracking_url,
       c.tracking_number,
       o.revenue                      AS order_total,
       o.currency                     AS order_currency,
       o.ordered_at,
       o.ordered_at                   AS history_at
FROM order_status_changes c
JOIN orders o ON o.order_id = c.order_id
WHERE c.changed_at > :since
  AND c.changed_at <= :as_of
  AND NOT EXISTS (
        SELECT 1 FROM order_status_changes e
        WHERE e.order_id = c.order_id AND e.status = c.status
          AND (e.changed_at < c.changed_at
               OR (e.changed_at = c.changed_at AND e.changed_us < c.changed_us)
               OR (e.changed_at = c.changed_at AND e.changed_us = c.changed_us AND e.message_id < c.message_id)))
  AND NOT (c.status = 'shipped' AND EXISTS (
        SELECT 1 FROM order_status_changes later
        WHERE later.order_id = c.order_id AND later.status IN ('delivered', 'cancelled', 'refunded')
          AND later.changed_at <= :as_of))
