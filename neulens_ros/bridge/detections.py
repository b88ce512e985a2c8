"""Detections as plain arrays <-> vision_msgs Detection2DArray / Detection3DArray / LabelInfo.

Boxes are (x0, y0, x1, y1) in original image pixels, x1/y1 exclusive; vision_msgs stores the
centre and size. Class ids travel as decimal strings in ObjectHypothesis.class_id: the
detector's data-set ids (models/labels.py; 0..n-1 for the generated scenes), whose names a
LabelInfo (class_id -> class_name) gives.
"""

from __future__ import annotations

from typing import Any, Sequence

import numpy as np
from geometry_msgs.msg import Pose
from vision_msgs.msg import (BoundingBox2D, Detection2D, Detection2DArray, Detection3D,
                             Detection3DArray, LabelInfo, ObjectHypothesisWithPose,
                             VisionClass)

from neulens_ros.errors import DataError


def boxes_to_detection2d_array(header: Any, boxes: Sequence[Sequence[float]],
                               class_ids: Sequence[int], scores: Sequence[float],
                               ids: Sequence[str] | None = None) -> Detection2DArray:
    """Detection2DArray from [N, 4] boxes (x0, y0, x1, y1 pixels), class ids and scores;
    `ids` (e.g. the track id of a ground-truth object) go into Detection2D.id."""
    given = {'boxes': boxes, 'class ids': class_ids, 'scores': scores,
             **({} if ids is None else {'ids': ids})}
    if len({len(values) for values in given.values()}) > 1:
        raise DataError(', '.join(f'{len(values)} {name}' for name, values in given.items())
                        + ': all must have the same length')
    out = Detection2DArray(header=header)
    for i, (box, class_id, score) in enumerate(zip(boxes, class_ids, scores, strict=True)):
        x0, y0, x1, y1 = (float(v) for v in box)
        det = Detection2D(header=header, id=ids[i] if ids is not None else '')
        bbox = BoundingBox2D()
        bbox.center.position.x = (x0 + x1) / 2.0
        bbox.center.position.y = (y0 + y1) / 2.0
        bbox.size_x = x1 - x0
        bbox.size_y = y1 - y0
        det.bbox = bbox
        det.results = [_hypothesis(class_id, score)]
        out.detections.append(det)
    return out


def _hypothesis(class_id: int, score: float, pose: Pose | None = None
                ) -> ObjectHypothesisWithPose:
    """One hypothesis; 3D detections carry the object's pose in it too (vision_msgs readers
    take it from there)."""
    hyp = ObjectHypothesisWithPose()
    hyp.hypothesis.class_id = str(int(class_id))
    hyp.hypothesis.score = float(score)
    if pose is not None:
        hyp.pose.pose = pose
    return hyp


def _pose(centre: np.ndarray, quaternion: np.ndarray) -> Pose:
    """A Pose from a centre (x, y, z) and a quaternion (x, y, z, w)."""
    pose = Pose()
    pose.position.x, pose.position.y, pose.position.z = (float(v) for v in centre)
    (pose.orientation.x, pose.orientation.y, pose.orientation.z,
     pose.orientation.w) = (float(v) for v in quaternion)
    return pose


def boxes3d_to_detection3d_array(header: Any, centres: np.ndarray, sizes: np.ndarray,
                                 quaternions: np.ndarray, class_ids: Sequence[int],
                                 scores: Sequence[float], ids: Sequence[str] | None = None
                                 ) -> Detection3DArray:
    """Detection3DArray from 3D boxes in the header's (camera optical) frame.

    centres [N, 3] metres, sizes [N, 3] metres (box extent along its own x, y, z axes),
    quaternions [N, 4] x, y, z, w rotating box axes into the frame; the box's pose is also the
    hypothesis's pose; `ids` (e.g. the index of the 2D detection each box was lifted from) go
    into Detection3D.id.
    """
    centres = np.asarray(centres, dtype=np.float64).reshape(-1, 3)
    sizes = np.asarray(sizes, dtype=np.float64).reshape(-1, 3)
    quaternions = np.asarray(quaternions, dtype=np.float64).reshape(-1, 4)
    n = len(centres)
    if not len(sizes) == len(quaternions) == len(class_ids) == len(scores) == n or (
            ids is not None and len(ids) != n):
        raise DataError(f'3D boxes: {n} centres, {len(sizes)} sizes, {len(quaternions)} '
                        f'rotations, {len(class_ids)} class ids and {len(scores)} scores: all '
                        'must have the same length')
    out = Detection3DArray(header=header)
    for i in range(n):
        det = Detection3D(header=header, id=ids[i] if ids is not None else '')
        det.bbox.center = _pose(centres[i], quaternions[i])
        det.bbox.size.x, det.bbox.size.y, det.bbox.size.z = (float(v) for v in sizes[i])
        det.results = [_hypothesis(class_ids[i], scores[i], _pose(centres[i], quaternions[i]))]
        out.detections.append(det)
    return out


def detection3d_array_to_boxes(msg: Any) -> dict[str, np.ndarray]:
    """{'centres' [N, 3], 'sizes' [N, 3], 'quaternions' [N, 4] xyzw, 'class_ids' [N],
    'scores' [N]} from a Detection3DArray (best hypothesis per detection)."""
    rows = []
    for det in msg.detections:
        c, q, s = det.bbox.center.position, det.bbox.center.orientation, det.bbox.size
        class_id, score = _best(det.results)
        rows.append(((c.x, c.y, c.z), (s.x, s.y, s.z), (q.x, q.y, q.z, q.w), class_id, score))
    return {
        'centres': np.asarray([r[0] for r in rows], dtype=np.float64).reshape(-1, 3),
        'sizes': np.asarray([r[1] for r in rows], dtype=np.float64).reshape(-1, 3),
        'quaternions': np.asarray([r[2] for r in rows], dtype=np.float64).reshape(-1, 4),
        'class_ids': np.asarray([r[3] for r in rows], dtype=np.int64),
        'scores': np.asarray([r[4] for r in rows], dtype=np.float64),
    }


def _best(results: Sequence[Any]) -> tuple[int, float]:
    """(class id, score) of the best hypothesis; (-1, 0.0) when there is none."""
    if not results:
        return -1, 0.0
    best = max(results, key=lambda r: r.hypothesis.score)
    try:
        return int(best.hypothesis.class_id), float(best.hypothesis.score)
    except ValueError as exc:
        raise DataError(f'class_id {best.hypothesis.class_id!r} is not an integer id') from exc


def detection2d_array_to_boxes(msg: Any) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """([N, 4] float64 boxes x0 y0 x1 y1, [N] int64 class ids, [N] float64 scores) from a
    Detection2DArray (best hypothesis per detection; class ids must be integers)."""
    boxes, classes, scores = [], [], []
    for det in msg.detections:
        cx, cy = det.bbox.center.position.x, det.bbox.center.position.y
        w, h = det.bbox.size_x, det.bbox.size_y
        boxes.append((cx - w / 2.0, cy - h / 2.0, cx + w / 2.0, cy + h / 2.0))
        class_id, score = _best(det.results)
        classes.append(class_id)
        scores.append(score)
    return (np.asarray(boxes, dtype=np.float64).reshape(-1, 4),
            np.asarray(classes, dtype=np.int64), np.asarray(scores, dtype=np.float64))


def label_info(header: Any, class_ids: Sequence[int], class_names: Sequence[str],
               threshold: float) -> LabelInfo:
    """LabelInfo of a detector: its class map (data-set id -> name) and score threshold."""
    if len(class_ids) != len(class_names):
        raise DataError(f'{len(class_ids)} class ids for {len(class_names)} class names')
    return LabelInfo(header=header, threshold=float(threshold),
                     class_map=[VisionClass(class_id=int(i), class_name=str(n))
                                for i, n in zip(class_ids, class_names, strict=True)])


def label_info_classes(msg: Any) -> dict[int, str]:
    """{class id: class name} of a LabelInfo."""
    return {int(c.class_id): str(c.class_name) for c in msg.class_map}
