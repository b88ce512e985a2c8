"""The types of generated scenes: how they are drawn (SceneConfig), their ground truth
(SceneObject) and one rendered frame (Scene), shared by both presets."""

from __future__ import annotations

from dataclasses import dataclass, field
from functools import lru_cache

import numpy as np

from neulens_ros.data.camera import PinholeCamera
from neulens_ros.errors import ConfigError

DENSITIES = ('dense', 'sparse', 'mixed')
PRESETS = ('easy', 'hard')


@dataclass(frozen=True)
class SceneConfig:
    """How scenes are drawn; validated on creation."""

    width: int = 640  # pixels
    height: int = 480  # pixels
    focal_px: float = 525.0  # at 640 px width; scaled with the width
    density: str = 'mixed'  # 'dense' (8-14 objects), 'sparse' (1-3) or 'mixed' (either)
    dense_range: tuple[int, int] = (8, 14)
    sparse_range: tuple[int, int] = (1, 3)
    distance_range: tuple[float, float] = (1.2, 6.0)  # forward distance of objects, metres
    camera_height: float = 1.3  # metres above the floor
    pitch_deg: float = 15.0  # downward tilt
    wall_distance: float = 7.5  # metres ahead
    frame_id: str = 'camera_color_optical_frame'
    preset: str = 'easy'  # 'easy' (five coloured solids) or 'hard' (a furnished room)

    def __post_init__(self) -> None:
        problems = []
        if self.preset not in PRESETS:
            problems.append(f'preset {self.preset!r} is not one of {PRESETS}')
        if self.width < 16 or self.height < 16:
            problems.append(f'image size {self.width}x{self.height} is below 16x16')
        if self.density not in DENSITIES:
            problems.append(f'density {self.density!r} is not one of {DENSITIES}')
        for name in ('dense_range', 'sparse_range'):
            lo, hi = getattr(self, name)
            if not 0 <= lo <= hi:
                problems.append(f'{name} {getattr(self, name)} needs 0 <= min <= max')
        near, far = self.distance_range
        if not 0.3 <= near < far < self.wall_distance - 0.5:
            problems.append(f'distance_range {self.distance_range} must satisfy 0.3 <= near < '
                            f'far < wall_distance - 0.5 ({self.wall_distance - 0.5})')
        if self.camera_height <= 0 or not 0 <= self.pitch_deg < 80 or self.focal_px <= 0:
            problems.append('camera_height and focal_px must be > 0, pitch_deg in [0, 80)')
        if problems:
            raise ConfigError('invalid SceneConfig: ' + '; '.join(problems))

    def camera(self) -> PinholeCamera:
        f = self.focal_px * self.width / 640.0
        return PinholeCamera(width=self.width, height=self.height, fx=f, fy=f,
                             cx=(self.width - 1) / 2.0, cy=(self.height - 1) / 2.0,
                             frame_id=self.frame_id)

    def camera_to_world(self) -> np.ndarray:
        """[3, 3] rotation of optical-frame vectors into the world frame."""
        flip = np.diag([1.0, -1.0, 1.0])  # optical y down -> world y up
        a = np.deg2rad(self.pitch_deg)
        pitch = np.array([[1.0, 0.0, 0.0], [0.0, np.cos(a), -np.sin(a)],
                          [0.0, np.sin(a), np.cos(a)]])  # forward axis tilted down by a
        return pitch @ flip


@dataclass(frozen=True)
class SceneObject:
    """Ground truth of one object."""

    class_id: int
    class_name: str
    box2d: tuple[int, int, int, int]  # visible pixels' box x0, y0, x1, y1 (x1, y1 exclusive)
    visible_pixels: int
    visibility: float  # visible pixels / pixels it would cover without occluders, 0..1
    centre: tuple[float, float, float]  # 3D box centre in the optical frame, metres
    size: tuple[float, float, float]  # extent along the box's own x, y, z axes, metres
    rotation: tuple[tuple[float, ...], ...]  # [3, 3] box axes -> optical frame
    yaw: float  # radians about the world up axis (gravity-aligned box)
    track_id: int = -1  # stable id of the object over a continuous sequence (-1: none)


@dataclass(frozen=True)
class Scene:
    """One rendered frame."""

    rgb: np.ndarray = field(repr=False)  # [H, W, 3] uint8
    depth: np.ndarray = field(repr=False)  # [H, W] float32 metres (optical z), NaN = none
    masks: np.ndarray = field(repr=False)  # [H, W] int32: 0 background, i + 1 = objects[i]
    camera: PinholeCamera
    objects: tuple[SceneObject, ...]
    seed: int
    up: tuple[float, float, float]  # world up (against gravity) in the optical frame


@lru_cache(maxsize=1)
def textures() -> tuple[np.ndarray, ...]:
    """Grey textures in 0..1 (scikit-image's bundled brick, grass and gravel photographs)."""
    from skimage import data
    return tuple(img.astype(np.float32) / 255.0 for img in (data.brick(), data.grass(),
                                                             data.gravel()))


def is_labelled(obj: SceneObject, width: int, height: int) -> bool:
    """Whether an object counts as ground truth for detection: at least a quarter visible and
    at least 40 visible pixels at 320 x 240 (scaled with the image area)."""
    min_pixels = 40.0 * (width * height) / (320 * 240)
    return obj.visibility >= 0.25 and obj.visible_pixels >= min_pixels
