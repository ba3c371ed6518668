-- Erasure: the tracking link and number of the customer's shipments (a parcel's tracking page
-- shows where and when it was delivered). Status, carrier and times stay (the notices' record).
-- Parameters: :customer_id.
UPDATE order_status_changes
SET tracking_url = NULL, tracking_number = NULL
WHERE order_id IN (SELECT order_id FROM orders WHERE customer_id = :customer_id)
  AND (tracking_url IS NOT NULL OR tracking_number IS NOT NULL)
