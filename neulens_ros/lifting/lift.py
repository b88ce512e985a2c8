"""DeepMix-style lifting: 2D detections + registered depth + intrinsics -> 3D boxes.

Per detection: the depth pixels inside the box's core (the box shrunk by `core_shrink`) are
gated around the object's depth (the nearer mode of the box's depth distribution, then
median +- max(3 MAD, min_band)), back-projected, voxel-downsampled, cleaned of statistical
outliers and clustered with DBSCAN (open3d) inside that box only; the cluster with the most
points is the object. Its gravity-aligned box (min-area footprint, completed along the view)
is the 3D detection, in the camera optical frame. A box with too few valid points yields no
3D detection and a counted reason, never a made-up box.
"""

from __future__ import annotations

import time
from collections import Counter
from dataclasses import dataclass, field
from typing import Sequence

import numpy as np

from neulens_ros.bridge.image import DEPTH_ENCODINGS, depth_to_metres
from neulens_ros.data.camera import PinholeCamera
from neulens_ros.errors import ConfigError, GeometryError, LiftingError
from neulens_ros.lifting.boxes import FOOTPRINTS, YawBox, fit_yaw_box, gravity_frame
from neulens_ros.lifting.geometry import back_project


@dataclass(frozen=True)
class Box2D:
    """One 2D detection in colour-image pixels (x1, y1 exclusive)."""

    x0: float
    y0: float
    x1: float
    y1: float
    class_id: int = 0
    score: float = 1.0

    def __post_init__(self) -> None:
        if not all(np.isfinite([self.x0, self.y0, self.x1, self.y1])):
            raise LiftingError(f'box has non-finite coordinates: {self}')


@dataclass(frozen=True)
class LiftingConfig:
    min_depth_m: float = 0.2
    max_depth_m: float = 10.0
    min_points: int = 30  # valid points needed for a 3D box
    voxel_size_m: float = 0.02  # 0 = no downsampling
    core_shrink: float = 0.2  # fraction of each side left out of the depth statistics
    min_band_m: float = 0.15  # depth gate half-width at least this
    # ... and at least this x the 2D box's width in metres (0 = off; 0.6 measured: boxes and
    # cones gain, pyramids lose, overall -3 points of IoU >= 0.5; see docs/lifting.md)
    depth_band_widths: float = 0.0
    dbscan_eps_m: float = 0.06
    outlier_neighbours: int = 16
    outlier_std: float = 2.0
    up: tuple[float, float, float] = (0.0, -1.0, 0.0)  # gravity 'up' in the optical frame
    complete_depth: bool = True
    # footprint kind per class id (see boxes.fit_yaw_box); ids beyond the list use 'round'
    footprints: tuple[str, ...] = ('round', 'round', 'round', 'apex', 'apex')

    def __post_init__(self) -> None:
        problems = []
        if not 0 <= self.min_depth_m < self.max_depth_m:
            problems.append('need 0 <= min_depth_m < max_depth_m')
        if self.min_points < 3:
            problems.append('min_points must be >= 3')
        if self.voxel_size_m < 0 or self.dbscan_eps_m <= 0 or self.min_band_m <= 0:
            problems.append('voxel size must be >= 0, DBSCAN eps and min band > 0')
        if self.depth_band_widths < 0:
            problems.append('depth_band_widths must be >= 0')
        if not 0 <= self.core_shrink < 0.5:
            problems.append('core_shrink must be in [0, 0.5)')
        if np.linalg.norm(self.up) < 1e-9:
            problems.append('up must be a non-zero vector')
        unknown = sorted(set(self.footprints) - set(FOOTPRINTS))
        if unknown:
            problems.append(f'footprints {unknown} are not among {FOOTPRINTS}')
        if problems:
            raise ConfigError('invalid LiftingConfig: ' + '; '.join(problems))


@dataclass(frozen=True)
class Lifted3D:
    index: int  # position of the 2D detection in the input
    detection: Box2D
    centre: np.ndarray  # [3] metres, optical frame
    size: np.ndarray  # [3] metres along the box's own axes (x, y = up, z)
    rotation: np.ndarray  # [3, 3] box axes -> optical frame
    quaternion: np.ndarray  # [4] x, y, z, w of `rotation`
    num_points: int
    box_g: YawBox  # the same box in the gravity frame
    points: np.ndarray | None = field(default=None, repr=False)  # [N, 3] object points


@dataclass(frozen=True)
class LiftingResult:
    objects: list[Lifted3D]
    skipped: Counter[str]
    timings_ms: dict[str, float]


def rotation_to_quaternion(r: np.ndarray) -> np.ndarray:
    """[3, 3] rotation -> [4] x, y, z, w (w >= 0)."""
    w = np.sqrt(max(0.0, 1 + r[0, 0] + r[1, 1] + r[2, 2])) / 2
    x = np.sqrt(max(0.0, 1 + r[0, 0] - r[1, 1] - r[2, 2])) / 2
    y = np.sqrt(max(0.0, 1 - r[0, 0] + r[1, 1] - r[2, 2])) / 2
    z = np.sqrt(max(0.0, 1 - r[0, 0] - r[1, 1] + r[2, 2])) / 2
    x = np.copysign(x, r[2, 1] - r[1, 2])
    y = np.copysign(y, r[0, 2] - r[2, 0])
    z = np.copysign(z, r[1, 0] - r[0, 1])
    q = np.array([x, y, z, w])
    return q / np.linalg.norm(q)


def depth_in_metres(depth: np.ndarray, encoding: str) -> np.ndarray:
    if encoding not in DEPTH_ENCODINGS:
        raise LiftingError(f'depth encoding {encoding!r} is not a depth encoding; use one of '
                           f'{DEPTH_ENCODINGS} (registered depth, mm or m)')
    if depth.ndim != 2:
        raise LiftingError(f'depth must be [H, W], got {list(depth.shape)}')
    return depth_to_metres(depth, encoding)


def box_scale(colour_size: tuple[int, int] | None, depth_shape: tuple[int, ...]
              ) -> tuple[float, float]:
    """Factors from colour pixels to depth pixels; error when the aspect ratios differ."""
    if colour_size is None:
        return 1.0, 1.0
    cw, ch = colour_size
    dh, dw = depth_shape[:2]
    sx, sy = dw / cw, dh / ch
    if abs(sx - sy) > 0.01 * max(sx, sy):
        raise LiftingError(f'colour {cw}x{ch} and depth {dw}x{dh} have different aspect '
                           'ratios: register the depth to the colour camera first')
    return sx, sy


def object_points(box: Box2D, depth_m: np.ndarray, camera: PinholeCamera,
                  config: LiftingConfig, scale: tuple[float, float]) -> np.ndarray | str:
    """[N, 3] gated points of the box's object, or the reason there are none."""
    h, w = depth_m.shape
    bx0, by0 = box.x0 * scale[0], box.y0 * scale[1]
    bx1, by1 = box.x1 * scale[0], box.y1 * scale[1]
    x0, x1 = int(max(0, np.floor(bx0))), int(min(w, np.ceil(bx1)))
    y0, y1 = int(max(0, np.floor(by0))), int(min(h, np.ceil(by1)))
    if x1 <= x0 or y1 <= y0:
        return 'outside_image'
    patch = depth_m[y0:y1, x0:x1]
    valid = np.isfinite(patch) & (patch >= config.min_depth_m) & (patch <= config.max_depth_m)
    # the depth statistics come from the box's core, where the object dominates
    cy, cx = int((y1 - y0) * config.core_shrink), int((x1 - x0) * config.core_shrink)
    core = patch[cy:patch.shape[0] - cy, cx:patch.shape[1] - cx]
    z = core[valid[cy:patch.shape[0] - cy, cx:patch.shape[1] - cx]]
    if z.size < config.min_points:
        return 'no_depth'
    # the object is in front of what surrounds it: centre the gate on the nearer mode
    near = np.percentile(z, 30)
    around = z[np.abs(z - near) < max(config.min_band_m, 0.1 * near)]
    median = np.median(around)
    mad = 1.4826 * np.median(np.abs(around - median))
    # an object seen at an angle reaches back about as far as it is wide: a gate narrower
    # than that cuts its far side off along a line of constant depth
    width_m = (bx1 - bx0) / camera.fx * median
    band = max(3 * mad, config.min_band_m, config.depth_band_widths * width_m)
    keep = valid & (patch >= median - band) & (patch <= median + band)
    if keep.sum() < config.min_points:
        return 'few_points'
    vs, us = np.nonzero(keep)
    return back_project(camera, us + x0, vs + y0, patch[keep])


def clean_cluster(points: np.ndarray, config: LiftingConfig) -> np.ndarray:
    """Voxel downsampling, statistical outlier removal and the largest DBSCAN cluster."""
    import open3d as o3d
    cloud = o3d.geometry.PointCloud(o3d.utility.Vector3dVector(points))
    if config.voxel_size_m > 0:
        cloud = cloud.voxel_down_sample(config.voxel_size_m)
    if len(cloud.points) > config.outlier_neighbours:
        cloud, _ = cloud.remove_statistical_outlier(config.outlier_neighbours,
                                                    config.outlier_std)
    pts = np.asarray(cloud.points)
    if len(pts) < 3:
        return pts
    labels = np.asarray(cloud.cluster_dbscan(eps=config.dbscan_eps_m, min_points=5))
    if labels.max() < 0:
        return pts[:0]
    best = np.bincount(labels[labels >= 0]).argmax()
    return pts[labels == best]


def lift_detections(detections: Sequence[Box2D], depth: np.ndarray, depth_encoding: str,
                    camera: PinholeCamera, config: LiftingConfig,
                    colour_size: tuple[int, int] | None = None,
                    keep_points: bool = False) -> LiftingResult:
    """3D boxes for `detections` (colour pixels) from a registered depth image."""
    started = time.perf_counter()
    depth_m = depth_in_metres(np.asarray(depth), depth_encoding)
    if (camera.width, camera.height) != (depth_m.shape[1], depth_m.shape[0]):
        raise GeometryError(f'CameraInfo is {camera.width}x{camera.height} but the depth '
                            f'image is {depth_m.shape[1]}x{depth_m.shape[0]}')
    scale = box_scale(colour_size, depth_m.shape)
    g = gravity_frame(np.asarray(config.up))
    objects: list[Lifted3D] = []
    skipped: Counter[str] = Counter()
    for i, det in enumerate(detections):
        points = object_points(det, depth_m, camera, config, scale)
        if isinstance(points, str):
            skipped[points] += 1
            continue
        cluster = clean_cluster(points, config)
        if len(cluster) < max(3, config.min_points // 4):
            skipped['few_points'] += 1
            continue
        kind = (config.footprints[det.class_id] if 0 <= det.class_id < len(config.footprints)
                else 'round')
        box = fit_yaw_box(cluster @ g.T, config.complete_depth, kind)
        centre, rotation = box.in_camera(g)
        objects.append(Lifted3D(i, det, centre, box.size, rotation,
                                rotation_to_quaternion(rotation), len(cluster), box,
                                cluster if keep_points else None))
    elapsed = 1e3 * (time.perf_counter() - started)
    return LiftingResult(objects, skipped, {
        'frame_ms': elapsed, 'per_object_ms': elapsed / max(1, len(detections))})
