"""Reproducible training of the bundled models (each script: one command, seeded, resumable)."""
