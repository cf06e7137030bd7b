"""The head in an MR volume: what a result's trust is measured and shown within (scores,
overlays, consistency), and what lies outside it (air, or a skull-stripped scan's zeros)."""
from __future__ import annotations

import numpy as np
from scipy import ndimage


def otsu_threshold(values: np.ndarray, bins: int = 256) -> float:
    """Otsu's threshold of ``values``: the bin centre that maximises the between-class variance
    of a ``bins``-bin histogram (the rule scikit-image's ``threshold_otsu`` implements)."""
    counts, edges = np.histogram(values, bins=bins, range=(float(values.min()), float(values.max())))
    centres = (edges[:-1] + edges[1:]) / 2
    weight_low = np.cumsum(counts)
    weight_high = np.cumsum(counts[::-1])[::-1]
    mean_low = np.cumsum(counts * centres) / np.maximum(weight_low, 1)
    mean_high = (np.cumsum((counts * centres)[::-1]) / np.maximum(weight_high[::-1], 1))[::-1]
    between = weight_low[:-1] * weight_high[1:] * (mean_low[:-1] - mean_high[1:]) ** 2
    return float(centres[:-1][np.argmax(between)])


def head_mask(volume: np.ndarray) -> np.ndarray:
    """Foreground (head) mask: Otsu threshold, largest component, holes filled, slightly closed."""
    foreground = volume > otsu_threshold(volume)
    labels, count = ndimage.label(foreground)
    if count > 1:
        sizes = ndimage.sum(foreground, labels, index=range(1, count + 1))
        foreground = labels == (1 + int(np.argmax(sizes)))
    foreground = ndimage.binary_closing(foreground, iterations=2)
    return ndimage.binary_fill_holes(foreground)
