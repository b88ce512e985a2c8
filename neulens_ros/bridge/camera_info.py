"""sensor_msgs/CameraInfo <-> PinholeCamera (plumb_bob model)."""

from __future__ import annotations

from typing import Any

import numpy as np
from sensor_msgs.msg import CameraInfo

from neulens_ros.data.camera import PinholeCamera
from neulens_ros.errors import GeometryError


def camera_to_info(camera: PinholeCamera, header: Any = None) -> CameraInfo:
    """CameraInfo for `camera` (rectified: R = I, P = [K | 0])."""
    msg = CameraInfo()
    if header is not None:
        msg.header = header
    msg.width, msg.height = camera.width, camera.height
    msg.distortion_model = 'plumb_bob'
    msg.d = [float(c) for c in camera.distortion]
    msg.k = camera.k.reshape(-1).tolist()
    msg.r = np.eye(3).reshape(-1).tolist()
    msg.p = np.hstack([camera.k, np.zeros((3, 1))]).reshape(-1).tolist()
    return msg


def info_to_camera(msg: Any) -> PinholeCamera:
    """PinholeCamera from a CameraInfo (any object with its fields, e.g. from rosbags).

    Raises GeometryError for a missing/zero K or an unsupported distortion model."""
    model = getattr(msg, 'distortion_model', '') or 'plumb_bob'
    if model not in ('plumb_bob', 'rational_polynomial'):
        raise GeometryError(f'distortion model {model!r} is not supported (use plumb_bob or '
                            'rational_polynomial, or rectify the image first)')
    k = np.asarray(msg.k, dtype=np.float64)
    if k.size != 9 or not np.any(k):
        raise GeometryError('CameraInfo.k is missing or all zeros: the camera is not '
                            'calibrated (publish its intrinsics)')
    frame_id = getattr(getattr(msg, 'header', None), 'frame_id', '') or 'camera_optical_frame'
    return PinholeCamera.from_k(int(msg.width), int(msg.height), k, tuple(msg.d),
                                frame_id=frame_id)
