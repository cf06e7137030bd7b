"""PNG panels that show results to people: one row of images, same window for the images."""
from __future__ import annotations

import io
import os
from dataclasses import dataclass

import numpy as np


@dataclass
class Tile:
    """One image of a panel, with its title, colour map and display window."""

    title: str
    image: np.ndarray
    cmap: str = "gray"
    vmin: float | None = None
    vmax: float | None = None
    aspect: float = 1.0  # pixel height / width in mm, so anisotropic slices look right
    contour: np.ndarray | None = None  # a mask outlined on the image (a lesion)
    overlay: np.ndarray | None = None  # values drawn in colour over the image where they reach overlay_range[0]
    overlay_range: tuple[float, float] = (0.0, 1.0)
    overlay_label: str = ""


def central_slice(volume: np.ndarray, axis: int, index: int | None = None) -> np.ndarray:
    """The slice through the middle (or ``index``) along ``axis``, rotated for display."""
    index = volume.shape[axis] // 2 if index is None else index
    return np.rot90(np.take(volume, index, axis=axis))


def save_panel(path: str | os.PathLike, rows: list[list[Tile | None]], suptitle: str = "") -> None:
    """A grid of tiles (``None`` leaves a cell empty), written as a PNG."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    columns = max(len(row) for row in rows)
    figure, axes = plt.subplots(len(rows), columns, figsize=(3.0 * columns, 3.3 * len(rows)), squeeze=False)
    for row_axes, row in zip(axes, rows):
        for index, axis in enumerate(row_axes):
            axis.axis("off")
            tile = row[index] if index < len(row) else None
            if tile is None:
                continue
            shown = axis.imshow(
                tile.image, cmap=tile.cmap, vmin=tile.vmin, vmax=tile.vmax, aspect=tile.aspect, interpolation="nearest"
            )
            axis.set_title(tile.title, fontsize=9)
            if tile.overlay is not None:
                low, high = tile.overlay_range
                tinted = np.ma.masked_less(tile.overlay, low)
                shown = axis.imshow(tinted, cmap="viridis", vmin=low, vmax=high, alpha=0.6, aspect=tile.aspect, interpolation="nearest")
                figure.colorbar(shown, ax=axis, fraction=0.046, pad=0.02).set_label(tile.overlay_label, fontsize=7)
            elif tile.cmap != "gray":
                figure.colorbar(shown, ax=axis, fraction=0.046, pad=0.02)
            if tile.contour is not None and tile.contour.any():
                axis.contour(tile.contour, levels=[0.5], colors="red", linewidths=0.8)
    if suptitle:
        figure.suptitle(suptitle, fontsize=10)
    figure.tight_layout()
    picture = io.BytesIO()
    figure.savefig(picture, dpi=110)
    plt.close(figure)
    save_compact(picture, path)


PALETTE_COLOURS = 128  # grey images, a few colour maps and text: no visible loss, a third of the bytes


def save_compact(picture: str | os.PathLike | io.BytesIO, path: str | os.PathLike, scale: float = 1.0) -> None:
    """A PNG of ``picture`` in a palette of PALETTE_COLOURS colours (the committed results'
    form: small enough to keep every panel in the repository), shrunk by ``scale`` without
    blending colours (nearest neighbour, after the palette is chosen)."""
    from PIL import Image

    image = Image.open(picture).convert("RGB").quantize(colors=PALETTE_COLOURS, method=Image.Quantize.MEDIANCUT, dither=Image.Dither.NONE)
    if scale != 1.0:
        image = image.resize((round(image.width * scale), round(image.height * scale)), Image.Resampling.NEAREST)
    image.save(path, optimize=True)
