"""Volumes and their grids: the type, reading and writing, target grids, resampling, intensity normalisation."""
