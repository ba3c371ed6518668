-- The landing files of one kind already loaded, with the content hash recorded at load (NULL
-- before migration 0014). Parameters: :kind.
SELECT source_file, checksum FROM ingest_files WHERE kind = :kind
