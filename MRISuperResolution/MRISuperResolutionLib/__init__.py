"""Helpers of the MRISuperResolution Slicer module (kept out of the thin module file).

Nothing here imports torch or the backend at import time: Slicer loads every module at
start-up, and the backend (and its dependencies) are imported only when a job runs.
"""
