"""MRISuperResolution backend: MRI super-resolution methods, with no Slicer dependency.

The public entry points are :func:`inference_backend.pipeline.run_job` (Python),
``mrisr`` / ``python -m inference_backend`` (command line). Importing this package is cheap:
torch and the methods load only when a job needs them.
"""
__version__ = "0.1.0"
