"""InverseSR(Decoder): slice imputation by inverting a 3D generative prior (docs/methods/inverse-sr.md)."""
