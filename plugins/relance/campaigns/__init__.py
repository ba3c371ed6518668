"""Campaign definitions (YAML) and planning into the outbox."""
