-- Records the definition a planner ran with; the version hash covers the YAML, the trigger
-- and content SQL and the templates, so analysts can tell which version sent a message.
-- Parameters: :campaign_id, :version_hash, :category, :priority, :enabled, :definition, :loaded_at.
INSERT INTO campaigns (campaign_id, version_hash, category, priority, enabled, definition, loaded_at)
VALUES (:campaign_id, :version_hash, :category, :priority, :enabled, :definition, :loaded_at)
ON CONFLICT (campaign_id) DO UPDATE SET
    version_hash = excluded.version_hash, category = excluded.category, priority = excluded.priority,
    enabled = excluded.enabled, definition = excluded.definition, loaded_at = excluded.loaded_at
WHERE campaigns.version_hash <> excluded.version_hash OR campaigns.enabled <> excluded.enabled
