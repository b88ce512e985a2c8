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
    collinear points are returned as they are (distinct). Qhull takes repeated points as they
    come; only a degenerate set pays for finding the distinct ones."""
    from scipy.spatial import ConvexHull, QhullError
    if len(points) >= 3:
        try:
            return points[ConvexHull(points).vertices]
        except QhullError:
            pass
    return np.unique(points, axis=0)


MIN_SIDE_M = 1e-3  # a footprint side at least this long (a cluster on one line has none)


def _axes(angle: float) -> np.ndarray:
    """[2, 2] rows: the unit axes in (x, z) of a rectangle whose first axis is at `angle`
    radians from x towards z."""
    c, s = np.cos(angle), np.sin(angle)
    return np.array([[c, s], [-s, c]])


def _local(points: np.ndarray, angles: np.ndarray) -> np.ndarray:
    """[2, N, A] coordinates of 2D points [N, 2] along the two axes of rectangles whose first
    axis is at each of `angles` [A] radians (from x towards z)."""
    c, s = np.cos(angles), np.sin(angles)
    return np.stack([points @ np.stack([c, s]), points @ np.stack([-s, c])])


def _box_at(points: np.ndarray, angle: float) -> tuple[np.ndarray, np.ndarray]:
    """(centre [2], size [2]) of the rectangle around 2D points [N, 2] whose first axis is at
    `angle` radians."""
    local = _local(points, np.array([angle]))[:, :, 0]  # [2, N]
    lo, hi = local.min(1), local.max(1)
    return ((lo + hi) / 2) @ _axes(angle), np.maximum(hi - lo, MIN_SIDE_M)


def min_area_rectangle(points: np.ndarray) -> tuple[np.ndarray, np.ndarray, float]:
    """(centre [2], size [2] along the rectangle's axes, angle) of the smallest rectangle
    around 2D points, by rotating calipers over the hull's edge directions."""
    hull = _hull(points)
    if len(hull) < 3:
        lo, hi = points.min(0), points.max(0)
        return (lo + hi) / 2, np.maximum(hi - lo, MIN_SIDE_M), 0.0
    edges = np.diff(np.vstack([hull, hull[:1]]), axis=0)
    angles = np.unique(np.mod(np.arctan2(edges[:, 1], edges[:, 0]), np.pi / 2))  # [A]
    local = _local(hull, angles)
    angle = float(angles[int(np.argmin(np.prod(local.max(1) - local.min(1), axis=0)))])
    return (*_box_at(hull, angle), angle)


# L-shape search (Zhang et al. 2017, "Efficient L-shape fitting for vehicle detection using
# laser scanners", closeness criterion): candidate angles and the distance floor d0
L_SHAPE_STEP_RAD = np.deg2rad(1.0)
L_SHAPE_MIN_DISTANCE_M = 0.01


def l_shape_rectangle(points: np.ndarray) -> tuple[np.ndarray, np.ndarray, float]:
    """(centre [2], size [2], angle) of the rectangle whose sides the 2D points [N, 2] hug
    closest: for each angle in [0, 90) degrees every point scores 1 / its distance to the
    nearest side (at least d0), and the angle with the highest sum wins. Unlike the smallest
    rectangle it follows a box's visible faces, not the line along which a depth gate cut its
    far side off, nor a few stray hull points."""
    angles = np.arange(0.0, np.pi / 2, L_SHAPE_STEP_RAD)  # [A]
    local = _local(points, angles)
    lo, hi = local.min(1, keepdims=True), local.max(1, keepdims=True)
    to_side = np.minimum(hi - local, local - lo).min(0)  # [N, A]
    score = (1.0 / np.maximum(to_side, L_SHAPE_MIN_DISTANCE_M)).sum(0)  # [A]
    angle = float(angles[int(np.argmax(score))])
    return (*_box_at(points, angle), angle)


@dataclass(frozen=True)
class _Rect:
    """A footprint rectangle in G's (x, z) plane; the camera sits at the origin."""

    centre: np.ndarray  # [2] metres
    size: np.ndarray  # [2] metres along the two axes
    angle: float  # radians of the first axis from G's x towards z

    def axes(self) -> np.ndarray:
        """[2, 2] rows: the unit axes in (x, z)."""
        return _axes(self.angle)

    def away(self, axis: int) -> np.ndarray:
        """[2] unit vector along `axis` pointing away from the camera."""
        a = self.axes()[axis]
        return a if float(a @ self.centre) >= 0 else -a

    def along_view(self) -> int:
        """The axis closest to the viewing direction (G's z)."""
        return int(np.argmax(np.abs(self.axes()[:, 1])))

    def near_edge(self, axis: int) -> float:
        """Position of the side nearest the camera along `away(axis)`, metres."""
        return float(self.away(axis) @ self.centre) - self.size[axis] / 2

    def grown(self, axis: int, length: float) -> _Rect:
        """The rectangle with its side along `axis` at least `length` long, the near side kept
        and the far side pushed away from the camera."""
        grow = max(0.0, length - float(self.size[axis]))
        size = self.size.copy()
        size[axis] += grow
        return _Rect(self.centre + self.away(axis) * grow / 2, size, self.angle)


FOOTPRINTS = ('round', 'apex', 'box', 'none')


def _complete(rect: _Rect, footprint: str, flat: np.ndarray, heights: np.ndarray,
              face_m: float) -> _Rect:
    """The visible footprint `rect` of points `flat` [N, 2] (heights [N]) completed by kind."""
    along = rect.along_view()
    if footprint == 'round':
        return rect.grown(along, float(rect.size[1 - along]))
    if footprint == 'apex':
        apex = flat[int(np.argmax(heights))]
        return rect.grown(along, 2 * (float(apex @ rect.away(along)) - rect.near_edge(along)))
    if footprint == 'box':
        thin = int(np.argmin(rect.size))
        if rect.size[thin] < face_m:
            return rect.grown(thin, float(rect.size[1 - thin]))
    return rect


def fit_yaw_box(points_g: np.ndarray, complete_depth: bool = True,
                footprint: str = 'round', face_m: float = 0.05) -> YawBox:
    """Box around points [N, 3] in the gravity frame.

    A depth camera sees only the front of an object, so the visible footprint is cut along
    the viewing direction. With `complete_depth` it is completed by the object's kind of
    footprint:
    - 'round' (cylinders, spheres): grown away from the camera to the extent across it,
      exact for round and square footprints;
    - 'apex' (cones, pyramids): the top sits over the footprint's centre, so the far half
      mirrors the near half about the highest point;
    - 'box': the rectangle comes from the L-shape search (`l_shape_rectangle`); two visible
      faces or the top give both sides, so it is kept as seen, except that a footprint
      thinner than `face_m` metres (one face, no top) is grown to a square like 'round';
    - 'none': the visible footprint as it is.
    """
    if footprint not in FOOTPRINTS:
        raise GeometryError(f'footprint {footprint!r} is not one of {FOOTPRINTS}')
    flat = points_g[:, [0, 2]]
    rect = _Rect(*(l_shape_rectangle(flat) if footprint == 'box'
                   else min_area_rectangle(flat)))
    if complete_depth:
        rect = _complete(rect, footprint, flat, points_g[:, 1], face_m)
    y0, y1 = points_g[:, 1].min(), points_g[:, 1].max()
    centre = np.array([rect.centre[0], (y0 + y1) / 2, rect.centre[1]])
    size = np.array([rect.size[0], y1 - y0, rect.size[1]])
    return YawBox(centre, size, -rect.angle)  # axes rotated by `angle` in (x, z) = yaw about y


def rest_on_floor(box: YawBox, floor_y: float, gap_m: float) -> YawBox:
    """`box` with its bottom on the floor at height `floor_y` (G's y) when it is less than
    `gap_m` above it: objects rest on the floor, whose points were removed together with the
    object's lowest centimetres."""
    bottom, top = box.centre[1] - box.size[1] / 2, box.centre[1] + box.size[1] / 2
    if bottom - floor_y >= gap_m:
        return box
    return YawBox(np.array([box.centre[0], (floor_y + top) / 2, box.centre[2]]),
                  np.array([box.size[0], top - floor_y, box.size[2]]), box.yaw)


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
