"""The real RGB-D sample: Middlebury 2014 'Motorcycle' (the stereo pair bundled with
scikit-image as `stereo_motorcycle`), turned into colour + metric depth + intrinsics.

scikit-image ships the quarter-resolution images (741 x 500) with the left view's ground-truth
disparity in pixels (inf = unknown). The calibration below is the data set's calib.txt for the
full 2964 x 2000 images divided by 4 (f = 3979.911 / 4, cx = 1244.772 / 4, cy = 1019.507 / 4,
doffs = 124.343 / 4; baseline 193.001 mm), so it matches the bundled resolution:
depth Z = f * B / (d + doffs).
"""

from __future__ import annotations

from functools import lru_cache

import numpy as np

from neulens_ros.data.camera import PinholeCamera
from neulens_ros.errors import DataError

FOCAL_PX = 994.978  # quarter resolution
CX, CY = 311.193, 254.877
DOFFS_PX = 31.086  # x-difference of the two principal points, quarter resolution
BASELINE_M = 0.193001
SIZE = (741, 500)  # width, height of the bundled images
FRAME_ID = 'motorcycle_left_optical_frame'


def disparity_to_depth(disparity: np.ndarray) -> np.ndarray:
    """Disparity (pixels, quarter resolution) -> float32 depth in metres, NaN where unknown
    (inf, NaN or non-positive disparity)."""
    d = np.asarray(disparity, dtype=np.float64)
    valid = np.isfinite(d) & (d > 0)
    depth = np.full(d.shape, np.nan, dtype=np.float32)
    depth[valid] = FOCAL_PX * BASELINE_M / (d[valid] + DOFFS_PX)
    return depth


@lru_cache(maxsize=1)
def load_motorcycle() -> tuple[np.ndarray, np.ndarray, PinholeCamera]:
    """(rgb [500, 741, 3] uint8, depth [500, 741] float32 metres NaN = none, camera)."""
    from skimage import data
    left, _, disparity = data.stereo_motorcycle()
    if (left.shape[1], left.shape[0]) != SIZE:
        raise DataError(f'stereo_motorcycle is {left.shape[1]}x{left.shape[0]}, expected '
                        f'{SIZE[0]}x{SIZE[1]}: the calibration would not match')
    camera = PinholeCamera(width=SIZE[0], height=SIZE[1], fx=FOCAL_PX, fy=FOCAL_PX, cx=CX,
                           cy=CY, frame_id=FRAME_ID)
    rgb = np.ascontiguousarray(left)
    depth = disparity_to_depth(disparity)
    rgb.flags.writeable = False
    depth.flags.writeable = False
    return rgb, depth, camera
