"""Persistence: models, engine and sessions, dialect-specific SQL."""
