"""Detections as plain arrays <-> vision_msgs Detection2DArray / Detection3DArray.

Boxes are (x0, y0, x1, y1) in original image pixels, x1/y1 exclusive; vision_msgs stores the
centre and size. Class ids travel as decimal strings in ObjectHypothesis.class_id.
"""

from __future__ import annotations

from typing import Any, Sequence

import numpy as np
from vision_msgs.msg import BoundingBox2D, Detection2D, Detection2DArray, ObjectHypothesisWithPose

from neulens_ros.errors import DataError


def boxes_to_detection2d_array(header: Any, boxes: Sequence[Sequence[float]],
                               class_ids: Sequence[int], scores: Sequence[float]
                               ) -> Detection2DArray:
    """Detection2DArray from [N, 4] boxes (x0, y0, x1, y1 pixels), class ids and scores."""
    if not len(boxes) == len(class_ids) == len(scores):
        raise DataError(f'{len(boxes)} boxes, {len(class_ids)} class ids and {len(scores)} '
                        'scores: the three must have the same length')
    out = Detection2DArray(header=header)
    for box, class_id, score in zip(boxes, class_ids, scores):
        x0, y0, x1, y1 = (float(v) for v in box)
        det = Detection2D(header=header)
        bbox = BoundingBox2D()
        bbox.center.position.x = (x0 + x1) / 2.0
        bbox.center.position.y = (y0 + y1) / 2.0
        bbox.size_x = x1 - x0
        bbox.size_y = y1 - y0
        det.bbox = bbox
        hyp = ObjectHypothesisWithPose()
        hyp.hypothesis.class_id = str(int(class_id))
        hyp.hypothesis.score = float(score)
        det.results = [hyp]
        out.detections.append(det)
    return out


def detection2d_array_to_boxes(msg: Any) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """([N, 4] float64 boxes x0 y0 x1 y1, [N] int64 class ids, [N] float64 scores) from a
    Detection2DArray (best hypothesis per detection; class ids must be integers)."""
    boxes, classes, scores = [], [], []
    for det in msg.detections:
        cx, cy = det.bbox.center.position.x, det.bbox.center.position.y
        w, h = det.bbox.size_x, det.bbox.size_y
        boxes.append((cx - w / 2.0, cy - h / 2.0, cx + w / 2.0, cy + h / 2.0))
        if det.results:
            best = max(det.results, key=lambda r: r.hypothesis.score)
            try:
                classes.append(int(best.hypothesis.class_id))
            except ValueError as exc:
                raise DataError(f'class_id {best.hypothesis.class_id!r} is not an integer id'
                                ) from exc
            scores.append(best.hypothesis.score)
        else:
            classes.append(-1)
            scores.append(0.0)
    return (np.asarray(boxes, dtype=np.float64).reshape(-1, 4),
            np.asarray(classes, dtype=np.int64), np.asarray(scores, dtype=np.float64))
