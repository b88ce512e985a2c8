"""COCO-style mean average precision (101-point interpolation), in numpy.

For each class and image, the (at most MAX_DETECTIONS) best-scored detections are greedily
matched, best score first, to unused ground-truth boxes at IoU >= t (the best-overlapping one,
the last of equals); then the detections of all images are sorted by score and AP is the mean
of the interpolated precision at recall 0, 0.01, ..., 1. mAP averages the classes that have
ground truth; mAP@0.5:0.95 averages t = 0.50, 0.55, ..., 0.95.

These are the rules of pycocotools' COCOeval (area 'all', maxDets 100, no crowd boxes, boxes
x1 - x0 wide) with its thresholds (np.linspace: 0.9 is 0.8999999999999999): on the same
detections both give the same numbers (test/test_eval_coco.py). COCO-format data sets with
crowd boxes are scored by eval/coco_eval.py, which runs COCOeval itself.
"""

from __future__ import annotations

from typing import Sequence

import numpy as np

COCO_THRESHOLDS = tuple(float(t) for t in np.linspace(0.5, 0.95, 10))  # as COCOeval's iouThrs
MAX_DETECTIONS = 100  # per image and class, as COCOeval's maxDets[-1]


def box_iou(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """[N, M] IoU of boxes a [N, 4] and b [M, 4] (x0, y0, x1, y1)."""
    a = np.asarray(a, np.float64).reshape(-1, 4)
    b = np.asarray(b, np.float64).reshape(-1, 4)
    lt = np.maximum(a[:, None, :2], b[None, :, :2])
    rb = np.minimum(a[:, None, 2:], b[None, :, 2:])
    inter = np.prod(np.clip(rb - lt, 0, None), axis=2)
    area_a = np.prod(np.clip(a[:, 2:] - a[:, :2], 0, None), axis=1)
    area_b = np.prod(np.clip(b[:, 2:] - b[:, :2], 0, None), axis=1)
    union = area_a[:, None] + area_b[None, :] - inter
    return np.where(union > 0, inter / np.where(union > 0, union, 1), 0.0)


def average_precision(scores: np.ndarray, matched: np.ndarray, num_gt: int) -> float:
    """101-point interpolated AP from per-detection scores and true/false positive flags."""
    if num_gt == 0:
        return float('nan')
    order = np.argsort(-scores, kind='stable')
    tp = np.cumsum(matched[order])
    fp = np.cumsum(~matched[order])
    recall = tp / num_gt
    precision = tp / np.maximum(tp + fp, 1e-12)
    # precision envelope (monotone non-increasing from the right)
    envelope = np.maximum.accumulate(precision[::-1])[::-1] if len(precision) else precision
    points = np.linspace(0.0, 1.0, 101)
    idx = np.searchsorted(recall, points, side='left')
    values = np.where(idx < len(envelope), envelope[np.minimum(idx, len(envelope) - 1)]
                      if len(envelope) else 0.0, 0.0)
    return float(np.mean(values))


def class_ap(dets: Sequence[tuple[np.ndarray, np.ndarray]],
             gts: Sequence[np.ndarray], threshold: float) -> float:
    """AP of one class: dets[i] = (boxes [M, 4], scores [M]), gts[i] = boxes [G, 4]."""
    all_scores, all_matched = [], []
    num_gt = sum(len(g) for g in gts)
    for (boxes, scores), gt in zip(dets, gts, strict=True):
        order = np.argsort(-scores, kind='stable')[:MAX_DETECTIONS]
        used = np.zeros(len(gt), bool)
        iou = box_iou(boxes[order], gt) if len(gt) else np.zeros((len(order), 0))
        for row in range(len(order)):
            candidates = np.where(~used, iou[row], -1.0) if len(gt) else np.array([])
            # the last of equally overlapping boxes, as COCOeval
            best = len(candidates) - 1 - int(np.argmax(candidates[::-1])) if len(
                candidates) else -1
            hit = best >= 0 and candidates[best] >= threshold
            if hit:
                used[best] = True
            all_matched.append(hit)
        all_scores.append(scores[order])
    scores = np.concatenate(all_scores) if all_scores else np.zeros(0)
    return average_precision(scores, np.asarray(all_matched, bool), num_gt)


def mean_ap(pred_boxes: Sequence[np.ndarray], pred_scores: Sequence[np.ndarray],
            pred_classes: Sequence[np.ndarray], gt_boxes: Sequence[np.ndarray],
            gt_classes: Sequence[np.ndarray], num_classes: int,
            thresholds: Sequence[float] = (0.5,)) -> float:
    """mAP over classes with ground truth, averaged over IoU `thresholds`."""
    values = []
    for t in thresholds:
        aps = []
        for c in range(num_classes):
            dets = [(np.asarray(b).reshape(-1, 4)[np.asarray(k) == c],
                     np.asarray(s)[np.asarray(k) == c])
                    for b, s, k in zip(pred_boxes, pred_scores, pred_classes, strict=True)]
            gts = [np.asarray(b).reshape(-1, 4)[np.asarray(k) == c]
                   for b, k in zip(gt_boxes, gt_classes, strict=True)]
            if sum(len(g) for g in gts):
                aps.append(class_ap(dets, gts, t))
        values.append(np.mean(aps) if aps else float('nan'))
    return float(np.mean(values))
