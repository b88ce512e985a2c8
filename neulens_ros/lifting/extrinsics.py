"""Rigid transforms between camera frames, and the tree of static transforms they come from.

TF's convention throughout: the transform of a `child` frame in its `parent` frame (as in a
geometry_msgs TransformStamped of /tf_static) maps points given in the child frame into the
parent frame, p_parent = R @ p_child + t. A RealSense-like driver publishes, for instance,
camera_link -> camera_depth_frame -> camera_depth_optical_frame and camera_link ->
camera_color_frame -> camera_color_optical_frame; the depth-to-colour extrinsics are the chain
between the two optical frames through their common ancestor.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Sequence

import numpy as np

from neulens_ros.errors import GeometryError

UNIT_TOLERANCE = 1e-3  # a quaternion's norm may differ from 1 by this much (rounding)


def quaternion_to_rotation(quaternion: Sequence[float]) -> np.ndarray:
    """[3, 3] rotation of a unit quaternion (x, y, z, w)."""
    q = np.asarray(quaternion, np.float64)
    if q.shape != (4,) or not np.all(np.isfinite(q)):
        raise GeometryError(f'a rotation quaternion needs 4 finite values (x, y, z, w), got '
                            f'{list(quaternion)}')
    norm = float(np.linalg.norm(q))
    if abs(norm - 1.0) > UNIT_TOLERANCE:
        raise GeometryError(f'rotation quaternion {list(quaternion)} has norm {norm:.4f}, not 1')
    x, y, z, w = q / norm
    return np.array([[1 - 2 * (y * y + z * z), 2 * (x * y - z * w), 2 * (x * z + y * w)],
                     [2 * (x * y + z * w), 1 - 2 * (x * x + z * z), 2 * (y * z - x * w)],
                     [2 * (x * z - y * w), 2 * (y * z + x * w), 1 - 2 * (x * x + y * y)]])


@dataclass(frozen=True)
class RigidTransform:
    """p_target = rotation @ p_source + translation (metres)."""

    rotation: np.ndarray  # [3, 3]
    translation: np.ndarray  # [3] metres

    def __post_init__(self) -> None:
        r, t = np.asarray(self.rotation, np.float64), np.asarray(self.translation, np.float64)
        if r.shape != (3, 3) or t.shape != (3,) or not (np.all(np.isfinite(r))
                                                        and np.all(np.isfinite(t))):
            raise GeometryError(f'a rigid transform needs a finite [3, 3] rotation and [3] '
                                f'translation, got {list(r.shape)} and {list(t.shape)}')
        if not np.allclose(r @ r.T, np.eye(3), atol=1e-5) or np.linalg.det(r) < 0:
            raise GeometryError('the rotation of a rigid transform must be orthonormal with '
                                'determinant +1')

    @classmethod
    def from_quaternion(cls, translation: Sequence[float], quaternion: Sequence[float]
                        ) -> RigidTransform:
        if len(translation) != 3:
            raise GeometryError(f'a translation needs 3 values (x, y, z), got '
                                f'{list(translation)}')
        return cls(quaternion_to_rotation(quaternion), np.asarray(translation, np.float64))

    @classmethod
    def identity(cls) -> RigidTransform:
        return cls(np.eye(3), np.zeros(3))

    def apply(self, points: np.ndarray) -> np.ndarray:
        """[N, 3] points moved from the source frame to the target frame."""
        return np.stack(self.apply_xyz(*np.asarray(points).T), axis=1)

    def apply_xyz(self, x: np.ndarray, y: np.ndarray, z: np.ndarray
                  ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """apply() on coordinates held as three [N] arrays (no [N, 3] copy, and elementwise
        products instead of an [N, 3] x [3, 3] product, which is slow for large N)."""
        r, t = self.rotation, self.translation
        return tuple(r[i, 0] * x + r[i, 1] * y + r[i, 2] * z + t[i] for i in range(3))

    def then(self, outer: RigidTransform) -> RigidTransform:
        """This transform followed by `outer` (source -> this target -> outer's target)."""
        return RigidTransform(outer.rotation @ self.rotation,
                              outer.rotation @ self.translation + outer.translation)

    def inverse(self) -> RigidTransform:
        return RigidTransform(self.rotation.T, -self.rotation.T @ self.translation)


@dataclass
class StaticTransforms:
    """A tree of static transforms by child frame: child -> (parent, child-to-parent)."""

    parents: dict[str, tuple[str, RigidTransform]] = field(default_factory=dict)

    def add(self, parent: str, child: str, transform: RigidTransform) -> None:
        """Add or replace the transform of `child` in `parent` (a later /tf_static wins)."""
        if not parent or not child or parent == child:
            raise GeometryError(f'a static transform needs two different frame ids, got '
                                f'{parent!r} -> {child!r}')
        self.parents[child] = (parent, transform)

    def _to_root(self, frame: str) -> list[tuple[str, RigidTransform]]:
        """[(ancestor, frame-to-ancestor)] from `frame` itself up to its root."""
        chain = [(frame, RigidTransform.identity())]
        while chain[-1][0] in self.parents and len(chain) <= len(self.parents):
            parent, step = self.parents[chain[-1][0]]
            chain.append((parent, chain[-1][1].then(step)))
        return chain

    def lookup(self, target: str, source: str) -> RigidTransform | None:
        """The transform taking points in `source` to `target`, or None when the two frames
        are not in one tree."""
        up_source = dict(self._to_root(source))
        for ancestor, target_to_ancestor in self._to_root(target):
            if ancestor in up_source:
                return up_source[ancestor].then(target_to_ancestor.inverse())
        return None
