"""Res-SRDiff: residual-shifting diffusion, slice by slice (docs/methods/res-srdiff.md)."""
