-- Records the content hash of a landing file just loaded (a catalog snapshot), so the same
-- content is not loaded again. Parameters: :source_file, :checksum.
UPDATE ingest_files SET checksum = :checksum WHERE source_file = :source_file
