"""SRMRI: a score-based prior of HR slices, DPS alternating with wavelet fusion (docs/methods/srmri.md)."""
