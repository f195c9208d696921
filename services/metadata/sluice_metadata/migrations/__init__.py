"""Alembic migrations of the metadata schema (run through `sluice_metadata.migrate`)."""
