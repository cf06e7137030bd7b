"""MSP-SR: SR3 conditional diffusion with a ControlNet branch, trained in stages (docs/methods/msp-sr.md)."""
