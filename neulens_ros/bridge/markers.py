"""RViz markers for 3D detections: one translucent cube and one label per box."""

from __future__ import annotations

from typing import Any, Sequence

import numpy as np
from builtin_interfaces.msg import Duration
from visualization_msgs.msg import Marker, MarkerArray

# One colour per class id (RGB, 0..1), cycled for ids beyond the table.
CLASS_COLOURS = ((0.90, 0.30, 0.25), (0.25, 0.70, 0.35), (0.25, 0.45, 0.90),
                 (0.95, 0.75, 0.20), (0.65, 0.35, 0.85), (0.20, 0.80, 0.80))


def detection_markers(header: Any, centres: np.ndarray, sizes: np.ndarray,
                      quaternions: np.ndarray, class_ids: Sequence[int],
                      scores: Sequence[float], class_names: Sequence[str] = (),
                      lifetime_s: float = 1.0, namespace: str = 'neulens') -> MarkerArray:
    """MarkerArray for RViz: DELETEALL, then a cube and a text label per 3D box.

    centres [N, 3] metres, sizes [N, 3] metres, quaternions [N, 4] xyzw, in header's frame.
    Markers expire after `lifetime_s` so boxes of a stalled pipeline do not linger.
    """
    out = MarkerArray()
    out.markers.append(Marker(header=header, ns=namespace, action=Marker.DELETEALL))
    lifetime = Duration(sec=int(lifetime_s), nanosec=int((lifetime_s % 1.0) * 1e9))
    for i, class_id in enumerate(class_ids):
        r, g, b = CLASS_COLOURS[int(class_id) % len(CLASS_COLOURS)]
        cube = Marker(header=header, ns=namespace, id=2 * i, type=Marker.CUBE,
                      action=Marker.ADD, lifetime=lifetime)
        cube.pose.position.x, cube.pose.position.y, cube.pose.position.z = (
            float(v) for v in centres[i])
        (cube.pose.orientation.x, cube.pose.orientation.y, cube.pose.orientation.z,
         cube.pose.orientation.w) = (float(v) for v in quaternions[i])
        cube.scale.x, cube.scale.y, cube.scale.z = (max(float(v), 1e-3) for v in sizes[i])
        cube.color.r, cube.color.g, cube.color.b, cube.color.a = r, g, b, 0.45
        label = Marker(header=header, ns=namespace, id=2 * i + 1,
                       type=Marker.TEXT_VIEW_FACING, action=Marker.ADD, lifetime=lifetime)
        label.pose.position.x, label.pose.position.y = cube.pose.position.x, cube.pose.position.y
        label.pose.position.z = cube.pose.position.z
        label.pose.position.y -= cube.scale.y / 2.0 + 0.05  # above the box (optical y is down)
        label.pose.orientation.w = 1.0
        label.scale.z = 0.12  # text height, metres
        label.color.r = label.color.g = label.color.b = label.color.a = 1.0
        name = (class_names[int(class_id)] if 0 <= int(class_id) < len(class_names)
                else str(int(class_id)))
        label.text = f'{name} {float(scores[i]):.2f}'
        out.markers.extend((cube, label))
    return out
