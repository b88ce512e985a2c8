"""Back-projection of depth pixels with CameraInfo intrinsics (plumb_bob distortion)."""

from __future__ import annotations

from functools import lru_cache

import numpy as np

from neulens_ros.data.camera import PinholeCamera


def undistort_normalised(xd: np.ndarray, yd: np.ndarray, d: tuple[float, ...],
                         iterations: int = 20) -> tuple[np.ndarray, np.ndarray]:
    """Invert the plumb_bob model (k1, k2, t1, t2, k3) on normalised coordinates by fixed-point
    iteration (as OpenCV's undistortPoints): returns ideal (x, y) [N] each."""
    k1, k2, p1, p2, k3 = (tuple(d) + (0.0,) * 5)[:5]
    x, y = xd.copy(), yd.copy()
    for _ in range(iterations):
        r2 = x * x + y * y
        radial = 1 + k1 * r2 + k2 * r2 * r2 + k3 * r2 ** 3
        dx = 2 * p1 * x * y + p2 * (r2 + 2 * x * x)
        dy = p1 * (r2 + 2 * y * y) + 2 * p2 * x * y
        x = (xd - dx) / radial
        y = (yd - dy) / radial
    return x, y


def distort_normalised(x: np.ndarray, y: np.ndarray, d: tuple[float, ...]
                       ) -> tuple[np.ndarray, np.ndarray]:
    """The plumb_bob model applied to ideal normalised coordinates."""
    k1, k2, p1, p2, k3 = (tuple(d) + (0.0,) * 5)[:5]
    r2 = x * x + y * y
    radial = 1 + k1 * r2 + k2 * r2 * r2 + k3 * r2 ** 3
    return (x * radial + 2 * p1 * x * y + p2 * (r2 + 2 * x * x),
            y * radial + p1 * (r2 + 2 * y * y) + 2 * p2 * x * y)


def back_project(camera: PinholeCamera, u: np.ndarray, v: np.ndarray, z: np.ndarray
                 ) -> np.ndarray:
    """[N, 3] points (metres, optical frame) of pixels (u, v) [N] with depth z [N] metres.
    (PinholeCamera guarantees positive focal lengths: a zero K fails when it is built.)"""
    x = (np.asarray(u, np.float64) - camera.cx) / camera.fx
    y = (np.asarray(v, np.float64) - camera.cy) / camera.fy
    if camera.has_distortion:
        x, y = undistort_normalised(x, y, camera.distortion)
    z = np.asarray(z, np.float64)
    return np.stack([x * z, y * z, z], axis=1)


@lru_cache(maxsize=8)
def ray_grid(camera: PinholeCamera) -> tuple[np.ndarray, np.ndarray]:
    """Undistorted normalised coordinates (x [H, W], y [H, W]) of every pixel of `camera`:
    computed once per camera (the plumb_bob inversion iterates), then looked up."""
    vs, us = np.mgrid[0:camera.height, 0:camera.width]
    x = (us - camera.cx) / camera.fx
    y = (vs - camera.cy) / camera.fy
    if camera.has_distortion:
        x, y = undistort_normalised(x, y, camera.distortion)
    x.flags.writeable = y.flags.writeable = False
    return x, y


def back_project_pixels(camera: PinholeCamera, u: np.ndarray, v: np.ndarray, z: np.ndarray
                        ) -> np.ndarray:
    """back_project for integer pixel positions (u, v) [N], from the camera's ray grid."""
    x, y = ray_grid(camera)
    z = np.asarray(z, np.float64)
    return np.stack([x[v, u] * z, y[v, u] * z, z], axis=1)
