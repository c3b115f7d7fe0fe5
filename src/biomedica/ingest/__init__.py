"""Ingest: PMC articles (JATS XML + figure images) from a source into the archive."""
