"""Diffusion noise schedules, one per file, each a :class:`~.base.Schedule` (a frozen dataclass
saved with its network) with its forward noising for training and its reverse process:

- ``residual_shift``: Res-SRDiff's Markov chain between the HR image and the up-sampled scan;
- ``score_sde``: SRMRI's variance-exploding SDE (the sampler is SRMRI's own: methods/srmri);
- ``sr3``: MSP-SR's linear-beta DDPM, sampled with DDIM.
"""
