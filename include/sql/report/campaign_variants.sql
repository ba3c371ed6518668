-- The loaded campaign definitions (JSON), to know each campaign's first (control) variant.
-- No parameters. Grain: one row per campaign.
SELECT campaign_id, definition FROM campaigns
