"""Procedural RGB-D scenes with ground truth, rendered by ray casting (numpy, no GPU).

Two presets: 'easy' (this file) and 'hard' (a furnished room, `data/room.py`);
`generate_scene` draws either from the config's preset.

Easy: a pinhole camera at `camera_height` metres looks at a textured floor in front of a textured
wall, pitched down by `pitch_deg`. Objects of five classes (box, cylinder, sphere, cone,
pyramid) stand on the floor at random positions, sizes and yaws, each class with its own
colour statistics and a texture. Per pixel the nearest hit wins (correct occlusion); the
renderer returns RGB, metric depth (optical-frame z), instance masks and, per object, the 2D
box of its visible pixels, its visibility and its 3D box in the camera optical frame.

Frames: world W (x right, y up, z forward, floor y = 0, camera above the origin); camera
optical frame C (x right, y down, z forward), the frame of CameraInfo and of the depth.
"""

from __future__ import annotations

import numpy as np

from neulens_ros.data.raycast import box_in_camera, candidate_pixels, texture_at, visible_box
from neulens_ros.data.room import HARD_CLASSES, generate_room_scene
from neulens_ros.data.scene_types import (DENSITIES, PRESETS, Scene, SceneConfig, SceneObject,
                                          is_labelled, textures)
from neulens_ros.data.shapes import CLASSES, Shape

__all__ = ['CLASSES', 'DENSITIES', 'PRESETS', 'Scene', 'SceneConfig', 'SceneObject',
           'class_names', 'generate_scene', 'is_labelled', 'render', 'sample_shapes', 'textures']

# Per class: base RGB (0..1) and how much it varies between objects.
CLASS_COLOURS = np.array([[0.80, 0.25, 0.20], [0.20, 0.55, 0.85], [0.95, 0.80, 0.20],
                          [0.25, 0.75, 0.35], [0.70, 0.35, 0.80]])
COLOUR_JITTER = 0.10
# Per class: (min, max) of (width, height) in metres; depth = width for round shapes.
CLASS_SIZES = {'box': ((0.3, 0.8), (0.25, 0.8)), 'cylinder': ((0.2, 0.5), (0.4, 1.1)),
               'sphere': ((0.25, 0.7), (0.0, 0.0)), 'cone': ((0.3, 0.6), (0.4, 0.9)),
               'pyramid': ((0.35, 0.8), (0.3, 0.7))}


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
    shade_floor = texture_at(tex[floor_tex], p_bg[:, 0], p_bg[:, 2], 0.8)
    shade_wall = texture_at(tex[wall_tex], p_bg[:, 0], p_bg[:, 1], 1.0)
    colour = np.where(floor[:, None], shade_floor[:, None] * floor_rgb,
                      shade_wall[:, None] * wall_rgb)
    light = np.array([0.4, 0.8, -0.45])
    light /= np.linalg.norm(light)
    t_best = t_bg.copy()
    label = np.zeros(n, dtype=np.int32)
    own_pixels = []
    for i, shape in enumerate(shapes):
        idx = candidate_pixels(shape, cam, rot, origin)  # [M] flat pixel indices
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
        pattern = 0.75 + 0.25 * texture_at(tex[i % len(tex)], p[:, 0] + p[:, 2], p[:, 1], 0.4)
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


def _ground_truth(shape: Shape, label: int, masks: np.ndarray, own_pixels: int,
                  cam_to_world: np.ndarray, origin: np.ndarray) -> SceneObject:
    box, visible = visible_box(masks == label)
    return SceneObject(class_id=shape.class_id, class_name=CLASSES[shape.class_id],
                       box2d=box, visible_pixels=visible,
                       visibility=visible / own_pixels if own_pixels else 0.0,
                       yaw=shape.yaw, **box_in_camera(shape, cam_to_world, origin))


def class_names(preset: str) -> tuple[str, ...]:
    """The classes of a preset's objects of interest, in class-id order."""
    return HARD_CLASSES if preset == 'hard' else CLASSES


def generate_scene(config: SceneConfig, seed: int) -> Scene:
    """The scene of `seed` in the config's preset: the same seed always gives the same
    arrays."""
    if config.preset == 'hard':
        return generate_room_scene(config, seed)
    rng = np.random.default_rng([seed, 0])
    return render(config, sample_shapes(config, rng), seed)
