"""One RGB-D frame: what the frame streams, the data set folders and the source node share."""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from neulens_ros.data.camera import PinholeCamera
from neulens_ros.data.scenes import SceneObject


@dataclass(frozen=True)
class RGBDFrame:
    """One registered colour + depth frame (same optical frame and intrinsics)."""

    rgb: np.ndarray = field(repr=False)  # [H, W, 3] uint8
    depth_m: np.ndarray = field(repr=False)  # [H, W] float32 metres, NaN = no depth
    camera: PinholeCamera
    objects: tuple[SceneObject, ...] | None = None  # ground truth, when known
