"""Thin shared kernel: paths, database session, event bus, clock, secrets and redaction."""
