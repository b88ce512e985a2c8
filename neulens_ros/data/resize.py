"""The one image resize of the package: 8-bit colour to another size with a box (area) filter.

Camera frames become the network input with it (headset), the training and evaluation sets
are made with it, and the gate's 28 x 28 tile inputs come from it, so the network and the
gate see at run time exactly what they were trained on.
"""

from __future__ import annotations

import numpy as np
from PIL import Image


def box_resize(rgb: np.ndarray, size: tuple[int, int]) -> np.ndarray:
    """[H, W, 3] uint8 -> [height, width, 3] uint8 for size (width, height); the image
    itself when it already has that size."""
    if (rgb.shape[1], rgb.shape[0]) == tuple(size):
        return rgb
    return np.asarray(Image.fromarray(rgb).resize(tuple(size), Image.Resampling.BOX))
