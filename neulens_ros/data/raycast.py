"""Ray-casting helpers shared by the scene presets: which pixels can see a shape, texture
lookup in world units, the box of a mask."""

from __future__ import annotations

import numpy as np

from neulens_ros.data.camera import PinholeCamera
from neulens_ros.data.shapes import Shape, yaw_matrix

BoxPose = dict[str, tuple]  # SceneObject centre, size and rotation


def candidate_pixels(shape: Shape, cam: PinholeCamera, cam_to_world: np.ndarray,
                     origin: np.ndarray) -> np.ndarray:
    """Flat indices of the pixels whose rays can hit `shape`: the image rectangle around the
    projected corners of its 3D box (which contains the shape); every pixel when a corner is
    not in front of the camera, none when no corner is."""
    sx, sy, sz = shape.size
    corners = np.array([[x, y, z] for x in (-sx / 2, sx / 2) for y in (0.0, sy)
                        for z in (-sz / 2, sz / 2)])  # [8, 3] object frame
    world = corners @ yaw_matrix(shape.yaw).T + [shape.x, 0.0, shape.z]
    optical = (world - origin) @ cam_to_world  # [8, 3] optical frame
    if (optical[:, 2] <= 1e-3).all():
        return np.zeros(0, dtype=np.int64)
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


def texture_at(image: np.ndarray, u: np.ndarray, v: np.ndarray, metres: float) -> np.ndarray:
    """Texture value 0..1 at world coordinates (u, v), the image tiling every `metres`."""
    h, w = image.shape
    iu = (np.nan_to_num(u / metres * w).astype(np.int64)) % w
    iv = (np.nan_to_num(v / metres * h).astype(np.int64)) % h
    return image[iv, iu]


def visible_box(mask: np.ndarray) -> tuple[tuple[int, int, int, int], int]:
    """(box x0, y0, x1, y1 with x1, y1 exclusive; (0, 0, 0, 0) when empty, pixel count) of a
    [H, W] bool mask."""
    ys, xs = np.nonzero(mask)
    if not len(xs):
        return (0, 0, 0, 0), 0
    return (int(xs.min()), int(ys.min()), int(xs.max()) + 1, int(ys.max()) + 1), len(xs)


def box_in_camera(shape: Shape, cam_to_world: np.ndarray, origin: np.ndarray) -> BoxPose:
    """The 3D box of `shape` in the optical frame of a camera at `origin` (world, metres) with
    rotation `cam_to_world` [3, 3]: SceneObject's centre (metres), size and rotation."""
    world_to_cam = cam_to_world.T
    return {'centre': tuple(float(v) for v in world_to_cam @ (shape.centre - origin)),
            'size': tuple(float(v) for v in shape.size),
            'rotation': tuple(tuple(float(v) for v in row)
                              for row in world_to_cam @ yaw_matrix(shape.yaw))}
