"""DeepMix-style lifting: 2D detections + registered depth + intrinsics -> 3D boxes.

Per frame: the floor (the frame's dominant horizontal plane, with gravity known; see
floor.py). Per detection: the depth pixels inside the box (every n-th column for near objects,
see column_step) are back-projected with rays computed once per camera and those on the floor
dropped; the rest are gated around the object's depth (the nearer mode of the depth
distribution in the box's core, the box shrunk by `core_shrink`, then median +- max(3 MAD,
min_band), widened to `depth_band_widths` x the box's metric width where the floor was
removed), voxel-downsampled (statistical outlier removal is optional) and clustered with
DBSCAN (open3d) inside that box only; the cluster covering most of the image is the object. Its
gravity-aligned box (footprint rectangle completed by the class's footprint kind, bottom on
the floor) is the 3D detection, in the camera optical frame. A box with too few valid points
yields no 3D detection and a counted reason, never a made-up box.
"""

from __future__ import annotations

import re
import time
from collections import Counter
from dataclasses import dataclass, field
from typing import Sequence

import numpy as np

from neulens_ros.bridge.image import DEPTH_ENCODINGS, depth_to_metres
from neulens_ros.data.camera import PinholeCamera
from neulens_ros.data.shapes import CLASSES
from neulens_ros.errors import ConfigError, GeometryError, LiftingError
from neulens_ros.lifting.boxes import (FOOTPRINTS, YawBox, fit_yaw_box, gravity_frame,
                                       rest_on_floor)
from neulens_ros.lifting.floor import Floor, find_floor
from neulens_ros.lifting.geometry import back_project_pixels

# The footprint kind of each shape word a class name may contain (see boxes.fit_yaw_box).
SHAPE_FOOTPRINTS = {'box': 'box', 'cylinder': 'round', 'sphere': 'round', 'cone': 'apex',
                    'pyramid': 'apex'}


def footprints_for(class_names: Sequence[str]) -> tuple[str, ...]:
    """Footprint kinds by class id from class names: the first shape word of each name
    (SHAPE_FOOTPRINTS: 'box_stripes' -> 'box', 'cone' -> 'apex'); 'round' for a name with
    none."""
    return tuple(next((SHAPE_FOOTPRINTS[word] for word in re.split(r'[^a-z]+', name.lower())
                       if word in SHAPE_FOOTPRINTS), 'round') for name in class_names)


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
    # ... and, where the floor was removed, at least this x the 2D box's width in metres: an
    # object seen at an angle reaches back further than it is wide (0 = off; with the floor
    # kept the gate stays narrow, as a wide one lets the floor in; see docs/lifting.md)
    depth_band_widths: float = 3.0
    dbscan_eps_m: float = 0.06
    # DBSCAN runs on the points of a coarser grid of this size, each voxel point taking its
    # grid cell's cluster (0 = on the voxel points; see cluster_labels)
    cluster_voxel_m: float = 0.04
    # statistical outlier removal (0 = off): with the floor removed it only thinned the sparse
    # far rows of the objects' tops (see docs/lifting.md)
    outlier_neighbours: int = 0
    outlier_std: float = 2.0
    up: tuple[float, float, float] = (0.0, -1.0, 0.0)  # gravity 'up' in the optical frame
    complete_depth: bool = True
    # footprint kind per class id (see boxes.fit_yaw_box); ids beyond the list use 'round'.
    # The default is the easy preset's classes; footprints_for gives those of any class names.
    footprints: tuple[str, ...] = footprints_for(CLASSES)
    box_face_m: float = 0.05  # a 'box' footprint thinner than this shows one face only
    floor_tolerance_m: float = 0.02  # points up to this above the floor are dropped (0 = off)
    floor_min_fraction: float = 0.1  # share of the frame's sampled points the floor needs
    floor_stride: int = 8  # pixel step of the frame's floor search, both axes
    floor_gap_m: float = 0.05  # a box bottom less than this above the floor is put on it
    # a box's pixel columns are sampled so that this many fall across each voxel at the
    # box's nearest depth (0 = every column; rows are all kept: see column_step)
    samples_per_voxel: float = 2.0

    def __post_init__(self) -> None:
        problems = []
        if not 0 <= self.min_depth_m < self.max_depth_m:
            problems.append('need 0 <= min_depth_m < max_depth_m')
        if self.min_points < 3 or self.outlier_neighbours < 0 or self.outlier_std <= 0:
            problems.append('need min_points >= 3, outlier_neighbours >= 0, outlier_std > 0')
        if self.voxel_size_m < 0 or self.dbscan_eps_m <= 0 or self.min_band_m <= 0:
            problems.append('voxel size must be >= 0, DBSCAN eps and min band > 0')
        if not 0 <= self.cluster_voxel_m < self.dbscan_eps_m:
            problems.append('cluster_voxel_m must be in [0, dbscan_eps_m) (0 = cluster the '
                            'voxel points)')
        if min(self.depth_band_widths, self.box_face_m, self.floor_tolerance_m,
               self.floor_gap_m) < 0:
            problems.append('depth_band_widths, box_face_m, floor_tolerance_m and floor_gap_m '
                            'must be >= 0')
        if not 0 < self.floor_min_fraction <= 1 or self.floor_stride < 1:
            problems.append('need 0 < floor_min_fraction <= 1 and floor_stride >= 1')
        if self.samples_per_voxel < 0:
            problems.append('samples_per_voxel must be >= 0 (0 = every column)')
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


METRES = 'metres'  # depth already converted by depth_in_metres (float32, NaN = none)


def check_depth(depth: np.ndarray, encoding: str) -> None:
    """LiftingError unless `depth` is an [H, W] image in a depth encoding (or METRES)."""
    if encoding != METRES and encoding not in DEPTH_ENCODINGS:
        raise LiftingError(f'depth encoding {encoding!r} is not a depth encoding; use one of '
                           f'{DEPTH_ENCODINGS} (registered depth, mm or m)')
    if depth.ndim != 2:
        raise LiftingError(f'depth must be [H, W], got {list(depth.shape)}')


def depth_in_metres(depth: np.ndarray, encoding: str) -> np.ndarray:
    """[H, W] float32 metres, NaN = no depth, of a depth image in `encoding` (or METRES)."""
    check_depth(depth, encoding)
    return depth if encoding == METRES else depth_to_metres(depth, encoding)


class MetresView:
    """A depth image in `encoding` read in metres (float32, NaN = no depth) as it is indexed:
    only the pixels a frame needs (the floor search's grid, the boxes) are converted, not the
    whole frame (a 1280 x 720 frame would be 3.7 MB of float32 per frame). `np.asarray(view)`
    converts the whole image."""

    def __init__(self, depth: np.ndarray, encoding: str) -> None:
        check_depth(depth, encoding)
        self.depth = depth  # [H, W] in `encoding`
        self.encoding = encoding
        self.shape: tuple[int, int] = depth.shape

    def __getitem__(self, index: object) -> np.ndarray:
        part = self.depth[index]
        return part if self.encoding == METRES else depth_to_metres(part, self.encoding)

    def __array__(self, dtype: object = None, copy: object = None) -> np.ndarray:
        metres = self[...]
        return metres if dtype is None else metres.astype(dtype)


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


NEAR_PERCENTILE = 5  # the box's nearest depth, robust to a few stray pixels
COARSE_STEP = 4  # pixel step of the look at the box that finds its nearest depth


def column_step(patch: np.ndarray, fx: float, config: LiftingConfig) -> int:
    """Every how many pixel columns of a box's depth `patch` [h, w] (metres) to lift: as many
    as leave `samples_per_voxel` columns across a voxel at the box's nearest depth, so the
    voxel grid the clustering sees is (almost) the one of every column, at a fraction of the
    pixels (7 x fewer for an object 1.5 m away at 1280 x 720). Rows are all kept: on a
    surface seen at a grazing angle (a box's top) neighbouring rows are far apart in depth."""
    if config.samples_per_voxel <= 0 or config.voxel_size_m <= 0:
        return 1
    coarse = patch[::COARSE_STEP, ::COARSE_STEP]
    z = coarse[np.isfinite(coarse) & (coarse >= config.min_depth_m)]
    if len(z) == 0:
        return 1
    near = float(np.percentile(z, NEAR_PERCENTILE))
    return max(1, int(config.voxel_size_m * fx / (config.samples_per_voxel * near)))


def object_points(box: Box2D, depth_m: np.ndarray, camera: PinholeCamera,
                  config: LiftingConfig, scale: tuple[float, float],
                  floor: Floor | None = None) -> tuple[np.ndarray, float] | str:
    """([N, 3] gated points of the box's object, off the `floor` when there is one; the
    gate's far end, metres of depth), or the reason there are none."""
    h, w = depth_m.shape
    bx0, by0 = box.x0 * scale[0], box.y0 * scale[1]
    bx1, by1 = box.x1 * scale[0], box.y1 * scale[1]
    x0, x1 = int(max(0, np.floor(bx0))), int(min(w, np.ceil(bx1)))
    y0, y1 = int(max(0, np.floor(by0))), int(min(h, np.ceil(by1)))
    if x1 <= x0 or y1 <= y0:
        return 'outside_image'
    patch = depth_m[y0:y1, x0:x1]
    step = column_step(patch, camera.fx, config)
    if step > 1:  # every step-th column and the last one
        columns = np.unique(np.append(np.arange(0, x1 - x0, step), x1 - x0 - 1))  # [w']
        patch = patch[:, columns]
    else:
        columns = np.arange(x1 - x0)
    vs, us = np.nonzero(np.isfinite(patch) & (patch >= config.min_depth_m)
                        & (patch <= config.max_depth_m))
    z = patch[vs, us]  # [M] metres
    points = back_project_pixels(camera, columns[us] + x0, vs + y0, z)  # [M, 3]
    off_floor = (np.ones(len(z), bool) if floor is None
                 else floor.above(points, config.floor_tolerance_m))
    # the depth statistics come from the box's core, where the object dominates
    cy, cx = int(patch.shape[0] * config.core_shrink), int(patch.shape[1] * config.core_shrink)
    in_core = ((vs >= cy) & (vs < patch.shape[0] - cy) & (us >= cx)
               & (us < patch.shape[1] - cx) & off_floor)
    if in_core.sum() < config.min_points:
        return 'no_depth'
    # the object is in front of what surrounds it: centre the gate on the nearer mode
    near = np.percentile(z[in_core], 30)
    around = z[in_core & (np.abs(z - near) < max(config.min_band_m, 0.1 * near))]
    median = np.median(around)
    mad = 1.4826 * np.median(np.abs(around - median))
    band = max(3 * mad, config.min_band_m)
    if floor is not None:
        # an object seen at an angle reaches back further than it is wide: a gate narrower
        # than that cuts its far side off along a line of constant depth
        width_m = (bx1 - bx0) / camera.fx * median
        band = max(band, config.depth_band_widths * width_m)
    keep = off_floor & (np.abs(z - median) <= band)
    if keep.sum() < config.min_points:
        return 'few_points'
    return points[keep], float(median + band)


DBSCAN_MIN_POINTS = 5  # neighbours within eps (itself included) that make a core point


def grid_cells(points: np.ndarray, cell_m: float) -> tuple[np.ndarray, np.ndarray]:
    """(centroids [C, 3] of the occupied cells of a grid of `cell_m` metres, cell index [N]
    of each of `points` [N, 3])."""
    keys = np.floor(points / cell_m).astype(np.int64)  # [N, 3]
    keys -= keys.min(0)
    span = keys.max(0) + 1
    flat = (keys[:, 0] * span[1] + keys[:, 1]) * span[2] + keys[:, 2]  # [N]
    _, cell = np.unique(flat, return_inverse=True)
    count = np.bincount(cell)
    centroids = np.stack([np.bincount(cell, weights=points[:, i]) / count for i in range(3)],
                         axis=1)
    return centroids, cell


def cluster_min_points(config: LiftingConfig) -> int:
    """DBSCAN's core point count on the clustered grid: DBSCAN_MIN_POINTS on the voxel
    points, fewer by the ratio of the cell sizes on a coarser grid, so that a thin line of
    points (a far surface's sampled row) stays as dense as it was."""
    if config.cluster_voxel_m <= 0 or config.voxel_size_m <= 0:
        return DBSCAN_MIN_POINTS
    return max(2, int(np.ceil(DBSCAN_MIN_POINTS * config.voxel_size_m
                              / config.cluster_voxel_m)))


def cluster_labels(points: np.ndarray, config: LiftingConfig) -> np.ndarray:
    """[N] DBSCAN label (-1 = noise) of each of `points` [N, 3] (open3d, eps dbscan_eps_m).
    With `cluster_voxel_m` the clustering runs on the centroids of a grid that coarse, and
    each point takes its cell's label: at 4 cm against 2 cm voxels DBSCAN sees a quarter of
    the points with a third of the neighbours each, a tenth of the time."""
    import open3d as o3d
    cell = None
    if config.cluster_voxel_m > 0:
        points, cell = grid_cells(points, config.cluster_voxel_m)
    cloud = o3d.geometry.PointCloud(o3d.utility.Vector3dVector(points))
    labels = np.asarray(cloud.cluster_dbscan(eps=config.dbscan_eps_m,
                                             min_points=cluster_min_points(config)))
    return labels if cell is None else labels[cell]


def clean_cluster(points: np.ndarray, config: LiftingConfig) -> np.ndarray:
    """Voxel downsampling, statistical outlier removal (when on) and the DBSCAN cluster
    covering most of the image."""
    import open3d as o3d
    cloud = o3d.geometry.PointCloud(o3d.utility.Vector3dVector(points))
    if config.voxel_size_m > 0:
        cloud = cloud.voxel_down_sample(config.voxel_size_m)
    if 0 < config.outlier_neighbours < len(cloud.points):
        cloud, _ = cloud.remove_statistical_outlier(config.outlier_neighbours,
                                                    config.outlier_std)
    pts = np.asarray(cloud.points)
    if len(pts) < 3:
        return pts
    labels = cluster_labels(pts, config)
    if labels.max() < 0:
        return pts[:0]
    # a voxel point at depth z stands for about (fx * voxel / z)^2 pixels: weighting by 1 / z^2
    # finds the object that covers most of the 2D box, not a wall far behind it whose
    # surface fills more voxels
    weights = pts[:, 2] ** -2.0 if config.voxel_size_m > 0 else np.ones(len(pts))
    clustered = labels >= 0
    best = np.bincount(labels[clustered], weights=weights[clustered]).argmax()
    return pts[labels == best]


CUT_MARGIN_M = 0.01  # an object this close to the gate's far end (plus a voxel) was cut


def footprint_kind(config: LiftingConfig, class_id: int, cut: bool) -> str:
    """The footprint kind of a class (ids beyond `config.footprints` are 'round'). A 'box'
    whose points reach the depth gate's far end lost its far side along a line of constant
    depth, so the visible rectangle cannot be kept: it is completed like a 'round' one."""
    kind = config.footprints[class_id] if 0 <= class_id < len(config.footprints) else 'round'
    return 'round' if kind == 'box' and cut else kind


def lift_detections(detections: Sequence[Box2D], depth: np.ndarray | MetresView,
                    depth_encoding: str,
                    camera: PinholeCamera, config: LiftingConfig,
                    colour_size: tuple[int, int] | None = None,
                    keep_points: bool = False) -> LiftingResult:
    """3D boxes for `detections` (colour pixels) from a registered depth image (`16UC1`,
    `32FC1`, or METRES: the output of depth_in_metres or a MetresView, not converted again).
    Only the pixels of the floor search and of the boxes are converted to metres."""
    started = time.perf_counter()
    depth_m = (depth if isinstance(depth, MetresView) and depth_encoding == METRES
               else MetresView(np.asarray(depth), depth_encoding))
    if (camera.width, camera.height) != (depth_m.shape[1], depth_m.shape[0]):
        raise GeometryError(f'CameraInfo is {camera.width}x{camera.height} but the depth '
                            f'image is {depth_m.shape[1]}x{depth_m.shape[0]}')
    scale = box_scale(colour_size, depth_m.shape)
    g = gravity_frame(np.asarray(config.up))
    floor = (find_floor(depth_m, camera, g[1], config.floor_stride, config.floor_tolerance_m,
                        config.floor_min_fraction, (config.min_depth_m, config.max_depth_m))
             if config.floor_tolerance_m > 0 and detections else None)
    objects: list[Lifted3D] = []
    skipped: Counter[str] = Counter()
    for i, det in enumerate(detections):
        gated = object_points(det, depth_m, camera, config, scale, floor)
        if isinstance(gated, str):
            skipped[gated] += 1
            continue
        points, far_m = gated
        cluster = clean_cluster(points, config)
        if len(cluster) < max(3, config.min_points // 4):
            skipped['few_points'] += 1
            continue
        kind = footprint_kind(config, det.class_id, cut=bool(
            cluster[:, 2].max() >= far_m - config.voxel_size_m - CUT_MARGIN_M))
        box = fit_yaw_box(cluster @ g.T, config.complete_depth, kind, config.box_face_m)
        if floor is not None:
            box = rest_on_floor(box, floor.height, config.floor_gap_m)
        centre, rotation = box.in_camera(g)
        objects.append(Lifted3D(i, det, centre, box.size, rotation,
                                rotation_to_quaternion(rotation), len(cluster), box,
                                cluster if keep_points else None))
    elapsed = 1e3 * (time.perf_counter() - started)
    return LiftingResult(objects, skipped, {
        'frame_ms': elapsed, 'per_object_ms': elapsed / max(1, len(detections))})


def warm_up(config: LiftingConfig) -> int:
    """Lift one synthetic object (a 0.4 m block 1.6 m away in front of a wall at 2 m, 160 x 120
    depth image) so that open3d's import and first calls are paid before the first real frame.
    Returns how many boxes it lifted (1 unless `config` rejects such an object)."""
    camera = PinholeCamera(width=160, height=120, fx=130.0, fy=130.0, cx=80.0, cy=60.0)
    depth = np.full((120, 160), 2.0, np.float32)  # [H, W] metres
    depth[40:80, 60:100] = 1.6  # the block: 40 x 40 px = 0.49 m at 1.6 m
    return len(lift_detections([Box2D(56, 36, 104, 84)], depth, '32FC1', camera,
                               config).objects)
