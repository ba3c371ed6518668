-- Migration 0007 (issue 7, back in stock): why a marketing message may go to a customer
-- without marketing consent. NULL for every message but an alert the customer explicitly
-- asked for ('request': a "notify me" on a product — consent for that one alert, as Klaviyo
-- and Shopify's back-in-stock apps treat it). The trigger query says so in a column
-- `consent_basis`; the planner copies it, the consent rule reads it. An explicit opt-out
-- (email_opt_in = false) and the suppression list still win.
ALTER TABLE message_log ADD COLUMN consent_basis TEXT;
