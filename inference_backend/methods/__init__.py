"""Super-resolution methods; each is declared in :mod:`inference_backend.registry`."""
