"""mAP by the standard COCO evaluator (pycocotools' COCOeval), from per-image arrays.

    coco_map(gt_boxes, gt_classes, pred_boxes, pred_scores, pred_classes, class_ids)
        -> {'map50': AP at IoU 0.5, 'map50_95': AP averaged over IoU 0.50:0.05:0.95}
    map50_by_size(..., class_ids, sides) -> [AP at IoU 0.5 of the boxes in each side range]

Per image i: gt_boxes[i] [G, 4] and pred_boxes[i] [M, 4] are (x0, y0, x1, y1) pixels (the
package's convention: x1/y1 exclusive, so the COCO width is x1 - x0, no +1); gt_classes[i]
[G] and pred_classes[i] [M] hold category values, pred_scores[i] [M]. `class_ids` are the
categories scored (a data set's own ids or training indices, as long as the arrays use the
same values); a class value outside them is an error, never dropped. Optional
gt_crowd[i] [G] marks COCO `iscrowd` boxes (matched without counting as misses or hits).
The numbers are COCOeval's (area 'all', at most 100 detections per image and category),
the same as its printed summary's first two lines; a category without ground truth does not
count (COCO's -1), and no ground truth at all gives NaN.
"""

from __future__ import annotations

import contextlib
import io
from typing import Any, Sequence

import numpy as np
from pycocotools.coco import COCO
from pycocotools.cocoeval import COCOeval

from neulens_ros.errors import DataError

MAX_DETECTIONS = 100  # COCOeval's default (maxDets[-1]) per image and category


def _xywh(boxes: np.ndarray) -> np.ndarray:
    """[N, 4] x0 y0 x1 y1 -> [N, 4] x y w h (COCO's bbox)."""
    boxes = np.asarray(boxes, np.float64).reshape(-1, 4)
    return np.concatenate([boxes[:, :2], boxes[:, 2:] - boxes[:, :2]], axis=1)


def _check_classes(classes: Sequence[np.ndarray], class_ids: Sequence[int], what: str) -> None:
    values = np.concatenate([np.asarray(c, np.int64).ravel() for c in classes] or [[]])
    unknown = sorted(set(values.tolist()) - {int(c) for c in class_ids})
    if unknown:
        raise DataError(f'{what} have class values {unknown[:10]} that are not among the '
                        f'{len(class_ids)} class ids scored ({list(class_ids)[:10]}...)')


def coco_dicts(gt_boxes: Sequence[np.ndarray], gt_classes: Sequence[np.ndarray],
               pred_boxes: Sequence[np.ndarray], pred_scores: Sequence[np.ndarray],
               pred_classes: Sequence[np.ndarray], class_ids: Sequence[int],
               gt_crowd: Sequence[np.ndarray] | None = None
               ) -> tuple[dict[str, Any], list[dict[str, Any]]]:
    """(COCO ground-truth dataset dict, COCO detection results list); image i gets id i."""
    lengths = {len(gt_boxes), len(gt_classes), len(pred_boxes), len(pred_scores),
               len(pred_classes), *(() if gt_crowd is None else (len(gt_crowd),))}
    if len(lengths) > 1:
        raise DataError(f'per-image lists of different lengths {sorted(lengths)}: ground '
                        'truth and detections must cover the same images')
    _check_classes(gt_classes, class_ids, 'ground-truth boxes')
    _check_classes(pred_classes, class_ids, 'detections')
    images, annotations, results = [], [], []
    for i, (boxes, classes) in enumerate(zip(gt_boxes, gt_classes, strict=True)):
        images.append({'id': i})
        crowd = np.zeros(len(classes), bool) if gt_crowd is None else np.asarray(gt_crowd[i])
        for box, cls, is_crowd in zip(_xywh(boxes), np.asarray(classes).ravel(), crowd,
                                      strict=True):
            annotations.append({'id': len(annotations) + 1, 'image_id': i,
                                'category_id': int(cls), 'bbox': box.tolist(),
                                'area': float(box[2] * box[3]), 'iscrowd': int(is_crowd)})
    for i, (boxes, scores, classes) in enumerate(zip(pred_boxes, pred_scores, pred_classes,
                                                     strict=True)):
        for box, score, cls in zip(_xywh(boxes), np.asarray(scores).ravel(),
                                   np.asarray(classes).ravel(), strict=True):
            results.append({'image_id': i, 'category_id': int(cls), 'bbox': box.tolist(),
                            'score': float(score)})
    dataset = {'images': images, 'annotations': annotations,
               'categories': [{'id': int(c), 'name': str(c)} for c in class_ids]}
    return dataset, results


def run_cocoeval(dataset: dict[str, Any], results: list[dict[str, Any]],
                 sides: Sequence[float] | None = None) -> np.ndarray:
    """COCOeval (bbox) of `results` against `dataset`, without its printing; returns its
    precision array [T IoU thresholds, R recall points, K categories, A areas, M maxDets]
    (-1 where a category has no ground truth). Areas: COCO's all / small / medium / large, or
    with `sides` (increasing box sides s_1 < ... < s_n, pixels) all, then boxes of side
    (sqrt of the area) under s_1, s_1 to s_2, ..., s_n and over, COCOeval's way (a detection
    outside an area's range that matches nothing there is not counted)."""
    with contextlib.redirect_stdout(io.StringIO()):
        truth = COCO()
        truth.dataset = dataset
        truth.createIndex()
        found = truth.loadRes(results) if results else COCO()
        if not results:  # loadRes rejects an empty list: no detection scores 0 everywhere
            found.dataset = {**dataset, 'annotations': []}
            found.createIndex()
        evaluator = COCOeval(truth, found, 'bbox')
        if sides is not None:
            edges = [0.0, *(float(side) ** 2 for side in sides), 1e10]
            evaluator.params.areaRng = [[0.0, 1e10], *zip(edges[:-1], edges[1:], strict=True)]
            evaluator.params.areaRngLbl = [str(i) for i in range(len(edges))]
        evaluator.evaluate()
        evaluator.accumulate()
    return evaluator.eval['precision']


def coco_map(gt_boxes: Sequence[np.ndarray], gt_classes: Sequence[np.ndarray],
             pred_boxes: Sequence[np.ndarray], pred_scores: Sequence[np.ndarray],
             pred_classes: Sequence[np.ndarray], class_ids: Sequence[int],
             gt_crowd: Sequence[np.ndarray] | None = None) -> dict[str, float]:
    """{'map50', 'map50_95'} of the detections by COCOeval (see the module docstring)."""
    precision = run_cocoeval(*coco_dicts(gt_boxes, gt_classes, pred_boxes, pred_scores,
                                         pred_classes, class_ids, gt_crowd))
    every = precision[:, :, :, 0, -1]  # area 'all', maxDets 100: [T, R, K]
    at50 = every[:1]  # iouThrs[0] = 0.5
    return {'map50': _mean_valid(at50), 'map50_95': _mean_valid(every)}


def map50_by_size(gt_boxes: Sequence[np.ndarray], gt_classes: Sequence[np.ndarray],
                  pred_boxes: Sequence[np.ndarray], pred_scores: Sequence[np.ndarray],
                  pred_classes: Sequence[np.ndarray], class_ids: Sequence[int],
                  sides: Sequence[float]) -> list[float]:
    """mAP@0.5 of the boxes in each side range: under sides[0], sides[0] to sides[1], ...,
    over sides[-1] (side = sqrt of the box area, pixels of the boxes given; COCOeval's ranges
    include both ends, so a box exactly on a boundary counts in both ranges); NaN for a range
    without ground truth."""
    if len(sides) < 1 or np.any(np.diff(sides) <= 0) or sides[0] <= 0:
        raise DataError(f'size ranges need increasing positive box sides, got {list(sides)}')
    precision = run_cocoeval(*coco_dicts(gt_boxes, gt_classes, pred_boxes, pred_scores,
                                         pred_classes, class_ids), sides=sides)
    return [_mean_valid(precision[:1, :, :, area, -1])
            for area in range(1, precision.shape[3])]


def _mean_valid(precision: np.ndarray) -> float:
    """COCOeval's summary: the mean over entries > -1 (NaN when there are none)."""
    valid = precision[precision > -1]
    return float(valid.mean()) if valid.size else float('nan')
