"""Pinhole camera model shared by the scene generator, the sample data and 3D lifting.

Conventions follow sensor_msgs/CameraInfo and REP 103/105: the camera optical frame has
x right, y down, z forward (metres); pixel (u, v) has u along columns, v along rows, and the
centre of the top-left pixel is at (0, 0).
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from neulens_ros.errors import GeometryError


@dataclass(frozen=True)
class PinholeCamera:
    """Intrinsics of one camera (CameraInfo's K and D, plumb_bob model)."""

    width: int  # pixels
    height: int  # pixels
    fx: float  # pixels
    fy: float  # pixels
    cx: float  # pixels
    cy: float  # pixels
    distortion: tuple[float, ...] = field(default=(0.0, 0.0, 0.0, 0.0, 0.0))  # k1 k2 t1 t2 k3
    frame_id: str = 'camera_optical_frame'

    def __post_init__(self) -> None:
        if self.width <= 0 or self.height <= 0:
            raise GeometryError(f'camera size must be positive, got {self.width}x{self.height}')
        for name in ('fx', 'fy'):
            value = getattr(self, name)
            if not np.isfinite(value) or value <= 0.0:
                raise GeometryError(f'camera {name} must be a positive focal length in pixels, '
                                    f'got {value} (is CameraInfo.k all zeros?)')
        for name in ('cx', 'cy'):
            if not np.isfinite(getattr(self, name)):
                raise GeometryError(f'camera {name} must be finite')
        if len(self.distortion) not in (0, 4, 5, 8, 12, 14):
            raise GeometryError(f'distortion must have 0, 4, 5, 8, 12 or 14 coefficients, '
                                f'got {len(self.distortion)}')

    @property
    def k(self) -> np.ndarray:
        """The 3x3 intrinsic matrix K (row-major, as in CameraInfo.k)."""
        return np.array([[self.fx, 0.0, self.cx], [0.0, self.fy, self.cy], [0.0, 0.0, 1.0]])

    @property
    def has_distortion(self) -> bool:
        return any(abs(c) > 0.0 for c in self.distortion)

    @classmethod
    def from_k(cls, width: int, height: int, k: 'np.ndarray | list[float]',
               distortion: 'tuple[float, ...] | list[float]' = (),
               frame_id: str = 'camera_optical_frame') -> 'PinholeCamera':
        """Build from a row-major 3x3 K (9 numbers), as stored in CameraInfo.k."""
        kk = np.asarray(k, dtype=np.float64).reshape(-1)
        if kk.size != 9:
            raise GeometryError(f'K must have 9 entries, got {kk.size}')
        return cls(width=int(width), height=int(height), fx=float(kk[0]), fy=float(kk[4]),
                   cx=float(kk[2]), cy=float(kk[5]),
                   distortion=tuple(float(c) for c in distortion) or (0.0,) * 5,
                   frame_id=frame_id)

    def scaled(self, width: int, height: int) -> 'PinholeCamera':
        """The same camera resampled to width x height (pixel-centre convention)."""
        sx, sy = width / self.width, height / self.height
        return PinholeCamera(width=width, height=height, fx=self.fx * sx, fy=self.fy * sy,
                             cx=(self.cx + 0.5) * sx - 0.5, cy=(self.cy + 0.5) * sy - 0.5,
                             distortion=self.distortion, frame_id=self.frame_id)

    def project(self, points: np.ndarray) -> np.ndarray:
        """Project [N, 3] points (metres, optical frame, z > 0) to [N, 2] pixels (u, v)."""
        pts = np.asarray(points, dtype=np.float64)
        z = pts[:, 2]
        return np.stack([self.fx * pts[:, 0] / z + self.cx, self.fy * pts[:, 1] / z + self.cy],
                        axis=1)

    def rays(self, u: np.ndarray, v: np.ndarray) -> np.ndarray:
        """Unit-depth rays [..., 3] (z = 1) through pixels (u, v), ignoring distortion."""
        x = (np.asarray(u, dtype=np.float64) - self.cx) / self.fx
        y = (np.asarray(v, dtype=np.float64) - self.cy) / self.fy
        return np.stack([x, y, np.ones_like(x)], axis=-1)
