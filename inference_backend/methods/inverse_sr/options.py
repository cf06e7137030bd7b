"""Options of InverseSR; why their defaults: docs/methods/inverse-sr.md."""
from __future__ import annotations

from dataclasses import dataclass

from inference_backend.methods.options import MODEL_HELP, MethodOptions, option

BUNDLED_MODEL = "inverse-sr"  # the weights shipped with the method (registry.METHODS: its default model)


@dataclass(frozen=True)
class InverseSROptions(MethodOptions):
    model: str = option("", MODEL_HELP)
    steps: int = option(10, "Adam steps on the latent of each tile (the paper: 600; 10 chosen on a training scan's slab)", minimum=1, maximum=5000)
    keep_acquired: bool = option(True, "project the result onto the acquired slices (they come back unchanged)")
    misfit: str = option(
        "linear",
        "with keep_acquired: how the decoded volume's misfit at the acquired slices is carried to the slices "
        "between them before the projection (linear, chosen on a training scan's slab; bspline; none: the "
        "acquired slices only)",
        choices=("linear", "bspline", "none"),
    )
    anchor: float = option(10.0, "weight of the pull towards the starting latent (0: the paper's loss; 10 chosen on a training scan's slab)", minimum=0.0)
    acquisition: str = option("thin", "thin: slices with gaps (imputation); thick: contiguous thick slices", choices=("thin", "thick"))
    tile: int = option(64, "tile side in voxels (memory: one tile at a time)", minimum=16, maximum=512)
    overlap: int = option(16, "tile overlap in voxels (cross-faded)", minimum=0, maximum=256)
