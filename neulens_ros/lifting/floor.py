"""The floor the objects stand on, found in the whole frame with gravity known.

Seen through a depth camera an object and the floor around its base are one connected
surface: the floor's points join the object's cluster unless they are removed, and a depth
gate narrow enough to keep them out also cuts off the far side of the object. With `up`
known the floor is a horizontal plane: the frame's most common height, with (almost) nothing
below it.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from neulens_ros.data.camera import PinholeCamera
from neulens_ros.lifting.geometry import back_project_pixels

BELOW_FRACTION = 0.01  # points allowed more than two bins below the floor (noise)


@dataclass(frozen=True)
class Floor:
    """The plane of points p (optical frame) with up . p = height."""

    up: np.ndarray  # [3] unit 'up' in the optical frame
    height: float  # metres along `up` from the camera (negative: below it)

    def above(self, points: np.ndarray, tolerance_m: float) -> np.ndarray:
        """[N] bool: which points [N, 3] lie more than `tolerance_m` above the floor."""
        return points @ self.up > self.height + tolerance_m


def floor_height(heights: np.ndarray, bin_m: float, min_fraction: float) -> float | None:
    """Height of the floor among point heights [N] (metres along up), or None.

    The floor is the fullest `bin_m` wide height bin when it holds at least `min_fraction` of
    the points and at most BELOW_FRACTION of them lie more than two bins below it; its height
    is the median of the points within a bin of it.
    """
    if len(heights) == 0 or bin_m <= 0:
        return None
    lo, hi = float(heights.min()), float(heights.max())
    counts, edges = np.histogram(heights, np.arange(lo, hi + 2 * bin_m, bin_m))
    fullest = int(np.argmax(counts))
    near = heights[(heights >= edges[fullest] - bin_m) & (heights < edges[fullest + 1] + bin_m)]
    if len(near) < min_fraction * len(heights):
        return None
    level = float(np.median(near))
    if np.mean(heights < level - 2 * bin_m) > BELOW_FRACTION:
        return None
    return level


def find_floor(depth_m: np.ndarray, camera: PinholeCamera, up: np.ndarray, stride: int,
               bin_m: float, min_fraction: float, depth_range: tuple[float, float]
               ) -> Floor | None:
    """The floor in depth image `depth_m` [H, W] (metres, or a lift.MetresView that converts
    only the pixels read; pixels outside `depth_range` are ignored) from every `stride`-th
    pixel along both axes, or None when there is none."""
    z = depth_m[::stride, ::stride]  # [h, w] metres
    vs, us = np.mgrid[0:depth_m.shape[0]:stride, 0:depth_m.shape[1]:stride]
    ok = np.isfinite(z) & (z >= depth_range[0]) & (z <= depth_range[1])
    up = np.asarray(up, np.float64) / np.linalg.norm(up)
    heights = back_project_pixels(camera, us[ok], vs[ok], z[ok]) @ up
    level = floor_height(heights, bin_m, min_fraction)
    return None if level is None else Floor(up, level)
