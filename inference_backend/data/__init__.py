"""Training data: synthetic brains, degraded pairs, the development scans. Never imported at inference."""
