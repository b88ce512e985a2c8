"""Gravity-aligned 3D boxes: fitting one to an object's points, and their exact 3D IoU.

A gravity frame G is built from the `up` vector (in the camera optical frame): G's y axis is
up, its z axis the camera's forward direction flattened onto the ground, x completes a right-
handed frame. A box is a footprint rectangle in G's x-z plane (centre, size, yaw) times a
height interval along y.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from neulens_ros.errors import GeometryError


def gravity_frame(up: np.ndarray) -> np.ndarray:
    """[3, 3] rotation R with rows = G's axes in the optical frame (p_G = R @ p_C)."""
    y = np.asarray(up, np.float64)
    norm = np.linalg.norm(y)
    if norm < 1e-9:
        raise GeometryError('the up vector is zero')
    y = y / norm
    forward = np.array([0.0, 0.0, 1.0])
    z = forward - y * (forward @ y)
    if np.linalg.norm(z) < 1e-6:
        raise GeometryError('the camera looks straight up or down: no ground direction')
    z /= np.linalg.norm(z)
    x = np.cross(y, z)
    return np.stack([x, y, z])


@dataclass(frozen=True)
class YawBox:
    """A box in the gravity frame: footprint centre (x, z), vertical interval, size, yaw."""

    centre: np.ndarray  # [3] in G, metres
    size: np.ndarray  # [3] extent along the box's x, y (height), z axes, metres
    yaw: float  # radians about G's y axis

    def rotation_g(self) -> np.ndarray:
        c, s = np.cos(self.yaw), np.sin(self.yaw)
        return np.array([[c, 0.0, s], [0.0, 1.0, 0.0], [-s, 0.0, c]])

    def footprint(self) -> np.ndarray:
        """[4, 2] corners (x, z) in G, counter-clockwise."""
        r = self.rotation_g()
        hx, hz = self.size[0] / 2, self.size[2] / 2
        local = np.array([[hx, 0, hz], [-hx, 0, hz], [-hx, 0, -hz], [hx, 0, -hz]])
        pts = local @ r.T + self.centre
        corners = pts[:, [0, 2]]
        return _ccw(corners)

    def in_camera(self, g: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """(centre [3], rotation [3, 3] box axes -> optical frame) for a gravity frame g."""
        return g.T @ self.centre, g.T @ self.rotation_g()


def _ccw(poly: np.ndarray) -> np.ndarray:
    area = 0.5 * np.sum(poly[:, 0] * np.roll(poly[:, 1], -1) - np.roll(poly[:, 0], -1)
                        * poly[:, 1])
    return poly if area >= 0 else poly[::-1]


def _hull(points: np.ndarray) -> np.ndarray:
    """Convex hull vertices [H, 2] counter-clockwise (Qhull); fewer than 3 distinct or
    collinear points are returned as they are."""
    from scipy.spatial import ConvexHull, QhullError
    pts = np.unique(points, axis=0)
    if len(pts) < 3:
        return pts
    try:
        return pts[ConvexHull(pts).vertices]
    except QhullError:
        return pts


def min_area_rectangle(points: np.ndarray) -> tuple[np.ndarray, np.ndarray, float]:
    """(centre [2], size [2] along the rectangle's axes, angle) of the smallest rectangle
    around 2D points, by rotating calipers over the hull's edge directions."""
    hull = _hull(points)
    if len(hull) < 3:
        lo, hi = points.min(0), points.max(0)
        return (lo + hi) / 2, np.maximum(hi - lo, 1e-3), 0.0
    best = None
    edges = np.diff(np.vstack([hull, hull[:1]]), axis=0)
    for angle in np.unique(np.mod(np.arctan2(edges[:, 1], edges[:, 0]), np.pi / 2)):
        c, s = np.cos(angle), np.sin(angle)
        rot = np.array([[c, s], [-s, c]])
        local = hull @ rot.T
        lo, hi = local.min(0), local.max(0)
        area = np.prod(hi - lo)
        if best is None or area < best[0]:
            best = (area, ((lo + hi) / 2) @ rot, hi - lo, angle)
    return best[1], best[2], float(best[3])


FOOTPRINTS = ('round', 'apex', 'none')


def fit_yaw_box(points_g: np.ndarray, complete_depth: bool = True,
                footprint: str = 'round') -> YawBox:
    """Box around points [N, 3] in the gravity frame.

    A depth camera sees only the front of an object, so the visible footprint is cut along
    the viewing direction. With `complete_depth` the extent along the view (G's z) is
    completed by the object's kind of footprint:
    - 'round' (cylinders, spheres, and the guess for boxes): grown away from the camera to
      the extent across it, exact for round and square footprints;
    - 'apex' (cones, pyramids): the top sits over the footprint's centre, so the far half
      mirrors the near half about the highest point;
    - 'none': the visible footprint as it is.
    """
    if footprint not in FOOTPRINTS:
        raise GeometryError(f'footprint {footprint!r} is not one of {FOOTPRINTS}')
    flat = points_g[:, [0, 2]]
    centre2, size2, angle = min_area_rectangle(flat)
    y0, y1 = points_g[:, 1].min(), points_g[:, 1].max()
    yaw = -angle  # rectangle axes rotated by `angle` in (x, z) = yaw about y
    if complete_depth and footprint != 'none':
        c, s = np.cos(angle), np.sin(angle)
        axes = np.array([[c, s], [-s, c]])  # rows: rectangle axes in (x, z)
        along = int(np.argmax(np.abs(axes[:, 1])))  # the axis closest to the view (G's z)
        across = 1 - along
        away = axes[along] * (1.0 if float(axes[along] @ centre2) >= 0 else -1.0)
        size2 = size2.copy()
        if footprint == 'apex':
            apex = flat[int(np.argmax(points_g[:, 1]))]
            near = float((flat @ away).min())  # the camera sits at G's origin
            half = float(apex @ away) - near
            if 2 * half > size2[along]:
                centre2 = centre2 + away * (float(apex @ away) - float(centre2 @ away))
                size2[along] = 2 * half
        elif size2[along] < size2[across]:
            grow = size2[across] - size2[along]
            centre2 = centre2 + away * grow / 2
            size2[along] = size2[across]
    centre = np.array([centre2[0], (y0 + y1) / 2, centre2[1]])
    size = np.array([size2[0], y1 - y0, size2[1]])
    return YawBox(centre, size, yaw)


def _cross(a: np.ndarray, b: np.ndarray) -> float:
    """z of the 2D cross product."""
    return float(a[0] * b[1] - a[1] * b[0])


def _clip(subject: np.ndarray, clipper: np.ndarray) -> np.ndarray:
    """Sutherland-Hodgman: convex polygon `subject` clipped by convex ccw `clipper`."""
    out = subject
    for a, b in zip(clipper, np.roll(clipper, -1, axis=0), strict=True):
        if len(out) == 0:
            break
        inp, out = out, []
        edge = b - a
        for p, q in zip(inp, np.roll(inp, -1, axis=0), strict=True):
            p_in = _cross(edge, p - a) >= 0
            q_in = _cross(edge, q - a) >= 0
            if p_in:
                out.append(p)
            if p_in != q_in:
                d = q - p
                t = _cross(a - p, edge) / _cross(d, edge)
                out.append(p + t * d)
        out = np.array(out)
    return np.asarray(out)


def _area(poly: np.ndarray) -> float:
    if len(poly) < 3:
        return 0.0
    return float(abs(0.5 * np.sum(poly[:, 0] * np.roll(poly[:, 1], -1)
                                  - np.roll(poly[:, 0], -1) * poly[:, 1])))


def iou_3d(a: YawBox, b: YawBox) -> float:
    """Exact IoU of two gravity-aligned boxes: footprint polygon overlap x height overlap."""
    inter_fp = _area(_clip(a.footprint(), b.footprint()))
    h = max(0.0, min(a.centre[1] + a.size[1] / 2, b.centre[1] + b.size[1] / 2)
            - max(a.centre[1] - a.size[1] / 2, b.centre[1] - b.size[1] / 2))
    inter = inter_fp * h
    union = np.prod(a.size) + np.prod(b.size) - inter
    return float(inter / union) if union > 0 else 0.0
