"""Ingest stages (decode, fingerprint, ...) as plain functions, and the pipelines composing them."""
