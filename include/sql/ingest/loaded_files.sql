-- Landing files already loaded, of one kind.
-- Parameters: :kind ('events' | 'catalog').
SELECT source_file, loaded_at FROM ingest_files WHERE kind = :kind
