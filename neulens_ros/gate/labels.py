"""The gate's training labels (paper 4.4): per tile, the highest level that changes nothing.

For a frame, k and P, the reference is the supernet's output with every tile at level 0. For
each tile alone its level is raised 1, 2, 3, 4 (skip) while the other tiles stay at level 0;
the single-tile label is the last level reached before the detections stop matching the
reference. Raised together, single-tile labels can still lose objects (a box that straddles
two skipped tiles survives each test alone), so a joint pass follows: while the frame with
every tile at its label does not match the reference, the one tile whose lowering by one
level leaves the fewest unmatched detections is lowered (all candidates in one batch). The
result is an assignment the gate can apply to the whole frame at once.
'Matching' means: the detections with score >= `score_threshold` of both outputs pair up
one to one (same class, IoU >= `iou_threshold`, scores within `max_score_change`, greedy by
score) with nothing left over. The rule is strict on purpose: mAP ranks detections of all
frames by score, so a detection that survives with a lower score or a shifted box still costs
accuracy (measured with a perfect gate on 80 held-out frames, k = 3, P = layer2: the loose
rule (score >= 0.3, IoU >= 0.5, any score change, no joint pass) lost 4.1 mAP@0.5 points at
42% of the MACs; this one 0.3 points at 58%).
All raised variants of a frame run as one batch through the executor (grouped by level).

Alongside the label, the number of unmatched detections at every level of every tile is kept:
the gate's task loss uses it as the measured cost of choosing that level.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch

from neulens_ros.eval.map import box_iou
from neulens_ros.supernet.centernet import Detections, decode
from neulens_ros.supernet.executor import MicroFlowExecutor
from neulens_ros.supernet.slim import LEVEL_SKIP, NUM_LEVELS


@dataclass(frozen=True)
class MatchRule:
    score_threshold: float = 0.1  # low: detections down to here still count for mAP
    iou_threshold: float = 0.7
    max_score_change: float = 0.1  # a pair also needs |score difference| <= this
    joint: bool = True  # refine the single-tile labels until the whole frame matches


def mismatches(a: Detections, b: Detections, rule: MatchRule) -> int:
    """Detections of `a` or `b` left without a partner (0 = the outputs match)."""
    ka, kb = a.scores >= rule.score_threshold, b.scores >= rule.score_threshold
    boxes_a, cls_a, sc_a = a.boxes[ka], a.classes[ka], a.scores[ka]
    boxes_b, cls_b, sc_b = b.boxes[kb], b.classes[kb], b.scores[kb]
    used = np.zeros(len(boxes_b), bool)
    iou = box_iou(boxes_a, boxes_b)
    iou[np.abs(sc_a[:, None] - sc_b[None, :]) > rule.max_score_change] = -1.0
    paired = 0
    for i in np.argsort(-sc_a, kind='stable'):
        candidates = np.where(~used & (cls_b == cls_a[i]), iou[i], -1.0)
        if len(candidates) and candidates.max() >= rule.iou_threshold:
            used[int(candidates.argmax())] = True
            paired += 1
    return (len(boxes_a) - paired) + (len(boxes_b) - paired)


@dataclass(frozen=True)
class TileLabels:
    labels: np.ndarray  # [k*k] int: highest level before the output changes
    errors: np.ndarray  # [k*k, NUM_LEVELS] unmatched detections with that tile at each level


@torch.no_grad()
def label_frame(executor: MicroFlowExecutor, image: torch.Tensor, k: int, halo: str,
                stride: int, rule: MatchRule = MatchRule()) -> TileLabels:
    """Labels of the k x k tiles of one normalised image [1, 3, H, W]."""
    tiles = k * k
    variants = np.zeros((1 + tiles * (NUM_LEVELS - 1), tiles), np.int64)
    for t in range(tiles):
        for lv in range(1, NUM_LEVELS):
            variants[1 + t * (NUM_LEVELS - 1) + lv - 1, t] = lv
    out = executor(image.expand(len(variants), -1, -1, -1), variants, k, halo)
    dets = decode(out, stride, score_threshold=rule.score_threshold)
    reference = dets[0]
    errors = np.zeros((tiles, NUM_LEVELS), np.int64)
    for t in range(tiles):
        for lv in range(1, NUM_LEVELS):
            errors[t, lv] = mismatches(reference, dets[1 + t * (NUM_LEVELS - 1) + lv - 1], rule)
    labels = np.zeros(tiles, np.int64)
    for t in range(tiles):
        level = 0
        while level < LEVEL_SKIP and errors[t, level + 1] == 0:
            level += 1
        labels[t] = level
    if rule.joint:
        labels = joint_labels(executor, image, k, halo, stride, rule, reference, labels)
    return TileLabels(labels, errors)


def joint_labels(executor: MicroFlowExecutor, image: torch.Tensor, k: int, halo: str,
                 stride: int, rule: MatchRule, reference: Detections, labels: np.ndarray
                 ) -> np.ndarray:
    """Lower single-tile `labels` [k*k] greedily until all of them applied together match
    `reference`. Terminates: every round lowers one tile, and all-zero is the reference."""
    labels = labels.copy()
    while labels.any():
        raised = np.flatnonzero(labels)
        variants = np.repeat(labels[None], 1 + len(raised), axis=0)
        variants[np.arange(1, 1 + len(raised)), raised] -= 1  # row 0: the labels as they are
        out = executor(image.expand(len(variants), -1, -1, -1), variants, k, halo)
        dets = decode(out, stride, score_threshold=rule.score_threshold)
        misses = [mismatches(reference, d, rule) for d in dets]
        if misses[0] == 0:
            break
        # fewest misses; ties go to the tile at the highest level (the cheapest to lower)
        best = min(range(len(raised)), key=lambda j: (misses[1 + j], -labels[raised[j]]))
        labels[raised[best]] -= 1
    return labels
