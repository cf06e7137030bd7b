"""The neural networks the methods use (no method logic)."""
