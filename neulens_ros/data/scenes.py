"""Procedural RGB-D scenes with ground truth, rendered by ray casting (numpy, no GPU).

A pinhole camera at `camera_height` metres looks at a textured floor in front of a textured
wall, pitched down by `pitch_deg`. Objects of five classes (box, cylinder, sphere, cone,
pyramid) stand on the floor at random positions, sizes and yaws, each class with its own
colour statistics and a texture. Per pixel the nearest hit wins (correct occlusion); the
renderer returns RGB, metric depth (optical-frame z), instance masks and, per object, the 2D
box of its visible pixels, its visibility and its 3D box in the camera optical frame.

Frames: world W (x right, y up, z forward, floor y = 0, camera above the origin); camera
optical frame C (x right, y down, z forward), the frame of CameraInfo and of the depth.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from functools import lru_cache

import numpy as np

from neulens_ros.data.camera import PinholeCamera
from neulens_ros.data.shapes import CLASSES, Shape, yaw_matrix
from neulens_ros.errors import ConfigError

DENSITIES = ('dense', 'sparse', 'mixed')
# Per class: base RGB (0..1) and how much it varies between objects.
CLASS_COLOURS = np.array([[0.80, 0.25, 0.20], [0.20, 0.55, 0.85], [0.95, 0.80, 0.20],
                          [0.25, 0.75, 0.35], [0.70, 0.35, 0.80]])
COLOUR_JITTER = 0.10
# Per class: (min, max) of (width, height) in metres; depth = width for round shapes.
CLASS_SIZES = {'box': ((0.3, 0.8), (0.25, 0.8)), 'cylinder': ((0.2, 0.5), (0.4, 1.1)),
               'sphere': ((0.25, 0.7), (0.0, 0.0)), 'cone': ((0.3, 0.6), (0.4, 0.9)),
               'pyramid': ((0.35, 0.8), (0.3, 0.7))}


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

    def __post_init__(self) -> None:
        problems = []
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


def sample_shapes(config: SceneConfig, rng: np.random.Generator) -> list[Shape]:
    """Random objects on the floor, inside the view, not interpenetrating."""
    density = config.density if config.density != 'mixed' else (
        'dense' if rng.random() < 0.5 else 'sparse')
    lo, hi = config.dense_range if density == 'dense' else config.sparse_range
    count = int(rng.integers(lo, hi + 1))
    cam = config.camera()
    half_fov = np.arctan(cam.width / 2.0 / cam.fx)
    shapes: list[Shape] = []
    for _ in range(count * 20):
        if len(shapes) == count:
            break
        class_id = int(rng.integers(len(CLASSES)))
        (w_lo, w_hi), (h_lo, h_hi) = CLASS_SIZES[CLASSES[class_id]]
        width = float(rng.uniform(w_lo, w_hi))
        height = width if CLASSES[class_id] == 'sphere' else float(rng.uniform(h_lo, h_hi))
        depth = width if CLASSES[class_id] in ('sphere', 'cylinder', 'cone') else float(
            rng.uniform(w_lo, w_hi))
        z = float(rng.uniform(*config.distance_range))
        x = float(rng.uniform(-0.85, 0.85) * z * np.tan(half_fov))
        radius = 0.5 * np.hypot(width, depth)
        if any(np.hypot(s.x - x, s.z - z) < radius + 0.5 * np.hypot(s.size[0], s.size[2])
               for s in shapes):
            continue
        shapes.append(Shape(class_id, x, z, (width, height, depth),
                            float(rng.uniform(0, np.pi))))
    return shapes


def render(config: SceneConfig, shapes: list[Shape], seed: int = 0) -> Scene:
    """Render `shapes` (deterministic for a seed: it picks textures and colours)."""
    rng = np.random.default_rng([seed, 1])
    cam = config.camera()
    rot = config.camera_to_world()
    origin = np.array([0.0, config.camera_height, 0.0])
    v, u = np.mgrid[0:cam.height, 0:cam.width]
    dirs = cam.rays(u, v).reshape(-1, 3) @ rot.T  # [N, 3] world; optical z = 1, so t = depth
    n = len(dirs)
    tex = textures()
    # background: floor (y = 0) and wall (z = wall_distance)
    with np.errstate(divide='ignore', invalid='ignore'):
        t_floor = np.where(dirs[:, 1] < -1e-9, -origin[1] / dirs[:, 1], np.inf)
        t_wall = np.where(dirs[:, 2] > 1e-9, (config.wall_distance - origin[2]) / dirs[:, 2],
                          np.inf)
    floor = t_floor < t_wall
    t_bg = np.minimum(t_floor, t_wall)
    p_bg = origin + dirs * t_bg[:, None]
    floor_tex, wall_tex = rng.choice(len(tex), 2, replace=False)
    floor_rgb = rng.uniform(0.35, 0.75, 3)
    wall_rgb = rng.uniform(0.45, 0.85, 3)
    shade_floor = _texture(tex[floor_tex], p_bg[:, 0], p_bg[:, 2], 0.8)
    shade_wall = _texture(tex[wall_tex], p_bg[:, 0], p_bg[:, 1], 1.0)
    colour = np.where(floor[:, None], shade_floor[:, None] * floor_rgb,
                      shade_wall[:, None] * wall_rgb)
    light = np.array([0.4, 0.8, -0.45])
    light /= np.linalg.norm(light)
    t_best = t_bg.copy()
    label = np.zeros(n, dtype=np.int32)
    own_pixels = []
    for i, shape in enumerate(shapes):
        idx = _candidate_pixels(shape, cam, rot, origin)  # [M] flat pixel indices
        t, normals = shape.hit(origin, dirs[idx])  # [M], [M, 3]
        own = t < t_bg[idx]
        own_pixels.append(int(own.sum()))
        front = own & (t < t_best[idx])
        if not front.any():
            continue
        pix = idx[front]
        t_best[pix] = t[front]
        label[pix] = i + 1
        base = np.clip(CLASS_COLOURS[shape.class_id] + rng.uniform(-COLOUR_JITTER,
                                                                    COLOUR_JITTER, 3), 0, 1)
        p = origin + dirs[pix] * t[front, None]
        pattern = 0.75 + 0.25 * _texture(tex[i % len(tex)], p[:, 0] + p[:, 2], p[:, 1], 0.4)
        lambert = 0.35 + 0.65 * np.clip(normals[front] @ light, 0.0, 1.0)
        colour[pix] = base * (lambert * pattern)[:, None]
    rgb = np.clip(colour * 255.0 + rng.normal(0, 2.0, colour.shape), 0, 255)
    depth = np.where(np.isfinite(t_best), t_best, np.nan).astype(np.float32)
    masks = label.reshape(cam.height, cam.width)
    objects = tuple(_ground_truth(shape, i + 1, masks, own_pixels[i], rot, origin)
                    for i, shape in enumerate(shapes))
    return Scene(rgb=rgb.reshape(cam.height, cam.width, 3).astype(np.uint8),
                 depth=depth.reshape(cam.height, cam.width), masks=masks, camera=cam,
                 objects=objects, seed=seed, up=tuple(float(v) for v in rot.T @ [0, 1, 0]))


def _candidate_pixels(shape: Shape, cam: PinholeCamera, cam_to_world: np.ndarray,
                      origin: np.ndarray) -> np.ndarray:
    """Flat indices of the pixels whose rays can hit `shape`: the image rectangle around the
    projected corners of its 3D box (which contains the shape); every pixel when a corner is
    not in front of the camera."""
    sx, sy, sz = shape.size
    corners = np.array([[x, y, z] for x in (-sx / 2, sx / 2) for y in (0.0, sy)
                        for z in (-sz / 2, sz / 2)])  # [8, 3] object frame
    world = corners @ yaw_matrix(shape.yaw).T + [shape.x, 0.0, shape.z]
    optical = (world - origin) @ cam_to_world  # [8, 3] optical frame
    if (optical[:, 2] <= 1e-3).any():
        return np.arange(cam.width * cam.height)
    uv = cam.project(optical)
    u0, v0 = np.maximum(np.floor(uv.min(axis=0)).astype(int), 0)
    u1 = min(int(np.ceil(uv[:, 0].max())) + 1, cam.width)
    v1 = min(int(np.ceil(uv[:, 1].max())) + 1, cam.height)
    if u0 >= u1 or v0 >= v1:
        return np.zeros(0, dtype=np.int64)
    rows, cols = np.mgrid[v0:v1, u0:u1]
    return (rows * cam.width + cols).reshape(-1)


def _texture(image: np.ndarray, u: np.ndarray, v: np.ndarray, metres: float) -> np.ndarray:
    """Texture value 0..1 at world coordinates (u, v), the image tiling every `metres`."""
    h, w = image.shape
    iu = (np.nan_to_num(u / metres * w).astype(np.int64)) % w
    iv = (np.nan_to_num(v / metres * h).astype(np.int64)) % h
    return image[iv, iu]


def _ground_truth(shape: Shape, label: int, masks: np.ndarray, own_pixels: int,
                  cam_to_world: np.ndarray, origin: np.ndarray) -> SceneObject:
    ys, xs = np.nonzero(masks == label)
    box = (int(xs.min()), int(ys.min()), int(xs.max()) + 1, int(ys.max()) + 1) if len(xs) \
        else (0, 0, 0, 0)
    world_to_cam = cam_to_world.T
    centre = world_to_cam @ (shape.centre - origin)
    rotation = world_to_cam @ yaw_matrix(shape.yaw)
    return SceneObject(class_id=shape.class_id, class_name=CLASSES[shape.class_id],
                       box2d=box, visible_pixels=len(xs),
                       visibility=len(xs) / own_pixels if own_pixels else 0.0,
                       centre=tuple(float(v) for v in centre),
                       size=tuple(float(v) for v in shape.size),
                       rotation=tuple(tuple(float(v) for v in row) for row in rotation),
                       yaw=shape.yaw)


def is_labelled(obj: SceneObject, width: int, height: int) -> bool:
    """Whether an object counts as ground truth for detection: at least a quarter visible and
    at least 40 visible pixels at 320 x 240 (scaled with the image area)."""
    min_pixels = 40.0 * (width * height) / (320 * 240)
    return obj.visibility >= 0.25 and obj.visible_pixels >= min_pixels


def generate_scene(config: SceneConfig, seed: int) -> Scene:
    """The scene of `seed`: the same seed always gives the same arrays."""
    rng = np.random.default_rng([seed, 0])
    return render(config, sample_shapes(config, rng), seed)
