-- Which of some landing files are already loaded (ingest_files), for the trailing window:
-- a file listed again is skipped unless it is new. Parameters: :source_files (list).
-- Grain: one row per loaded file among them.
SELECT source_file FROM ingest_files WHERE source_file IN :source_files
