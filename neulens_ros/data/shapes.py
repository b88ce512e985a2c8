"""Analytic shapes the scene generator ray-casts: vectorised ray/shape intersection.

Frames: the world frame W has x right, y up (against gravity) and z forward; every shape
rests on the floor plane y = 0 and is rotated only about y (yaw). Rays are given in W as
origins [3] and directions [N, 3] (not necessarily unit length); `hit` returns the ray
parameter t [N] of the nearest hit in front of the origin (inf = miss) and unit normals [N, 3].
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

CLASSES = ('box', 'cylinder', 'sphere', 'cone', 'pyramid')
EPS = 1e-9


def yaw_matrix(yaw: float) -> np.ndarray:
    """[3, 3] rotation about the world y axis by `yaw` radians (object -> world)."""
    c, s = np.cos(yaw), np.sin(yaw)
    return np.array([[c, 0.0, s], [0.0, 1.0, 0.0], [-s, 0.0, c]])


@dataclass(frozen=True)
class Shape:
    """One object: class, footprint centre on the floor, size and yaw.

    size = (sx, sy, sz) metres: extent along the object's own x, y (height) and z axes;
    for round shapes sx = sz = diameter.
    """

    class_id: int
    x: float  # world x of the footprint centre, metres
    z: float  # world z of the footprint centre, metres
    size: tuple[float, float, float]
    yaw: float  # radians about world y

    @property
    def centre(self) -> np.ndarray:
        """[3] centre of the 3D box in the world frame, metres."""
        return np.array([self.x, self.size[1] / 2.0, self.z])

    def hit(self, origin: np.ndarray, dirs: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        rot = yaw_matrix(self.yaw)
        # into the object frame: origin at the footprint centre, y up
        o = (origin - np.array([self.x, 0.0, self.z])) @ rot
        d = dirs @ rot
        kind = CLASSES[self.class_id]
        if kind == 'sphere':
            t, n = _sphere(o, d, self.size[0] / 2.0)
        elif kind == 'cylinder':
            t, n = _cylinder(o, d, self.size[0] / 2.0, self.size[1])
        elif kind == 'cone':
            t, n = _cone(o, d, self.size[0] / 2.0, self.size[1])
        else:
            t, n = _convex(o, d, _planes(kind, self.size))
        return t, n @ rot.T


def _planes(kind: str, size: tuple[float, float, float]) -> np.ndarray:
    """[F, 4] half-spaces (nx, ny, nz, d) with n . p <= d inside, in the object frame."""
    sx, sy, sz = size[0] / 2.0, size[1], size[2] / 2.0
    if kind == 'box':
        return np.array([[1, 0, 0, sx], [-1, 0, 0, sx], [0, 1, 0, sy], [0, -1, 0, 0],
                         [0, 0, 1, sz], [0, 0, -1, sz]], dtype=np.float64)
    # square pyramid, apex at (0, sy, 0): each side plane passes through a base edge and apex
    planes = [[0.0, -1.0, 0.0, 0.0]]
    for axis, half in ((0, sx), (2, sz)):
        for sign in (1.0, -1.0):
            n = np.zeros(3)
            n[axis], n[1] = sign * sy, half
            n /= np.linalg.norm(n)
            planes.append([*n, n[1] * sy])
    return np.asarray(planes)


def _convex(o: np.ndarray, d: np.ndarray, planes: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Ray / convex polyhedron (slab method over the faces)."""
    normals, offsets = planes[:, :3], planes[:, 3]
    denom = d @ normals.T  # [N, F]
    num = offsets - normals @ o  # [F]
    with np.errstate(divide='ignore', invalid='ignore'):
        t = num / denom
    entering = denom < -EPS
    leaving = denom > EPS
    parallel_out = (~entering & ~leaving) & (num < 0)
    t_in = np.where(entering, t, -np.inf).max(axis=1)
    face = np.where(entering, t, -np.inf).argmax(axis=1)
    t_out = np.where(leaving, t, np.inf).min(axis=1)
    ok = (t_in <= t_out) & (t_in > EPS) & ~parallel_out.any(axis=1)
    return np.where(ok, t_in, np.inf), normals[face]


def _sphere(o: np.ndarray, d: np.ndarray, r: float) -> tuple[np.ndarray, np.ndarray]:
    c = o - np.array([0.0, r, 0.0])
    a = np.einsum('ij,ij->i', d, d)
    b = 2.0 * d @ c
    disc = b * b - 4.0 * a * (c @ c - r * r)
    t = (-b - np.sqrt(np.maximum(disc, 0.0))) / (2.0 * a)
    t = np.where((disc >= 0) & (t > EPS), t, np.inf)
    p = c + d * np.where(np.isfinite(t), t, 0.0)[:, None]
    return t, p / r


def _cylinder(o: np.ndarray, d: np.ndarray, r: float, h: float
              ) -> tuple[np.ndarray, np.ndarray]:
    a = d[:, 0] ** 2 + d[:, 2] ** 2
    b = 2.0 * (o[0] * d[:, 0] + o[2] * d[:, 2])
    c = o[0] ** 2 + o[2] ** 2 - r * r
    disc = b * b - 4.0 * a * c
    with np.errstate(divide='ignore', invalid='ignore'):
        t_side = (-b - np.sqrt(np.maximum(disc, 0.0))) / (2.0 * a)
        y = o[1] + t_side * d[:, 1]
        t_side = np.where((disc >= 0) & (a > EPS) & (t_side > EPS) & (y >= 0) & (y <= h),
                          t_side, np.inf)
        t_cap = (h - o[1]) / d[:, 1]
    p_cap = o + d * np.where(np.isfinite(t_cap), t_cap, 0.0)[:, None]
    t_cap = np.where((t_cap > EPS) & (p_cap[:, 0] ** 2 + p_cap[:, 2] ** 2 <= r * r)
                     & (d[:, 1] < 0), t_cap, np.inf)
    t = np.minimum(t_side, t_cap)
    p = o + d * np.where(np.isfinite(t), t, 0.0)[:, None]
    side_n = np.stack([p[:, 0], np.zeros(len(p)), p[:, 2]], axis=1) / r
    normals = np.where((t_cap < t_side)[:, None], np.array([0.0, 1.0, 0.0]), side_n)
    return t, normals


def _cone(o: np.ndarray, d: np.ndarray, r: float, h: float) -> tuple[np.ndarray, np.ndarray]:
    """Cone with base radius r on y = 0 and apex at y = h: x^2 + z^2 = (r (h - y) / h)^2."""
    k = (r / h) ** 2
    oy = o[1] - h  # apex-relative
    a = d[:, 0] ** 2 + d[:, 2] ** 2 - k * d[:, 1] ** 2
    b = 2.0 * (o[0] * d[:, 0] + o[2] * d[:, 2] - k * oy * d[:, 1])
    c = o[0] ** 2 + o[2] ** 2 - k * oy * oy
    disc = b * b - 4.0 * a * c
    sq = np.sqrt(np.maximum(disc, 0.0))
    with np.errstate(divide='ignore', invalid='ignore'):
        roots = np.stack([(-b - sq) / (2.0 * a), (-b + sq) / (2.0 * a)], axis=1)
    y = o[1] + roots * d[:, 1:2]
    valid = (disc[:, None] >= 0) & (roots > EPS) & (y >= 0) & (y <= h) & np.isfinite(roots)
    t = np.where(valid, roots, np.inf).min(axis=1)
    p = o + d * np.where(np.isfinite(t), t, 0.0)[:, None]
    normals = np.stack([p[:, 0], k * (h - p[:, 1]), p[:, 2]], axis=1)
    normals /= np.maximum(np.linalg.norm(normals, axis=1, keepdims=True), EPS)
    return t, normals
