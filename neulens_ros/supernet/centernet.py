"""CenterNet targets, loss and decoding for the TileDetector heads.

Heads at output stride s (4): heatmap [N, C, h, w] logits (one Gaussian peak per object
centre), size [N, 2, h, w] box width/height in output cells, offset [N, 2, h, w] sub-cell
centre offset. Boxes are (x0, y0, x1, y1) in network-input pixels, x1/y1 exclusive.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch
from torch.nn import functional as F


@dataclass(frozen=True)
class Targets:
    heatmap: torch.Tensor  # [N, C, h, w] 0..1 Gaussian peaks
    size: torch.Tensor  # [N, 2, h, w] width, height in cells at object centres
    offset: torch.Tensor  # [N, 2, h, w] sub-cell offset at object centres
    mask: torch.Tensor  # [N, 1, h, w] 1 at object centres


def build_targets(boxes: list[np.ndarray], classes: list[np.ndarray], num_classes: int,
                  out_h: int, out_w: int, stride: int) -> Targets:
    """Targets from per-image boxes [M, 4] (input pixels) and class ids [M]."""
    n = len(boxes)
    heat = np.zeros((n, num_classes, out_h, out_w), np.float32)
    size = np.zeros((n, 2, out_h, out_w), np.float32)
    offset = np.zeros((n, 2, out_h, out_w), np.float32)
    mask = np.zeros((n, 1, out_h, out_w), np.float32)
    ys, xs = np.mgrid[0:out_h, 0:out_w]
    for i, (bx, cl) in enumerate(zip(boxes, classes, strict=True)):
        for (x0, y0, x1, y1), c in zip(np.asarray(bx, np.float64).reshape(-1, 4), cl,
                                       strict=True):
            w, h = (x1 - x0) / stride, (y1 - y0) / stride
            if w <= 0 or h <= 0:
                continue
            cx, cy = (x0 + x1) / 2 / stride, (y0 + y1) / 2 / stride
            ix, iy = min(int(cx), out_w - 1), min(int(cy), out_h - 1)
            sx, sy = max(0.54 * w / 6, 0.4), max(0.54 * h / 6, 0.4)  # TTFNet-style spread
            g = np.exp(-((xs - ix) ** 2 / (2 * sx * sx) + (ys - iy) ** 2 / (2 * sy * sy)))
            heat[i, int(c)] = np.maximum(heat[i, int(c)], g)
            size[i, :, iy, ix] = (w, h)
            offset[i, :, iy, ix] = (cx - ix, cy - iy)
            mask[i, 0, iy, ix] = 1.0
    return Targets(*(torch.from_numpy(a) for a in (heat, size, offset, mask)))


def focal_loss(logits: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
    """CenterNet's penalty-reduced pixel-wise focal loss (alpha 2, beta 4), per object."""
    pred = torch.sigmoid(logits).clamp(1e-4, 1 - 1e-4)
    pos = target.eq(1).float()
    neg = 1.0 - pos
    pos_loss = torch.log(pred) * (1 - pred) ** 2 * pos
    neg_loss = torch.log(1 - pred) * pred ** 2 * (1 - target) ** 4 * neg
    num_pos = pos.sum().clamp(min=1.0)
    return -(pos_loss.sum() + neg_loss.sum()) / num_pos


def detection_loss(out: dict[str, torch.Tensor], targets: Targets) -> torch.Tensor:
    """Focal heatmap loss + 0.1 L1 size + 1 L1 offset at object centres (CenterNet)."""
    m = targets.mask
    num = m.sum().clamp(min=1.0)
    size_l1 = (F.l1_loss(out['size'], targets.size, reduction='none') * m).sum() / num
    off_l1 = (F.l1_loss(out['offset'], targets.offset, reduction='none') * m).sum() / num
    return focal_loss(out['heatmap'], targets.heatmap) + 0.1 * size_l1 + off_l1


def distillation_loss(student: dict[str, torch.Tensor], teacher: dict[str, torch.Tensor],
                      targets: Targets) -> torch.Tensor:
    """Narrower levels learn from the full width's outputs (detached soft targets): squared
    error between heatmap probabilities (summed, per object, weighted 10) plus size/offset L1
    at object centres."""
    soft = torch.sigmoid(teacher['heatmap'].detach())
    heat = 10.0 * F.mse_loss(torch.sigmoid(student['heatmap']), soft, reduction='sum')
    heat = heat / targets.mask.sum().clamp(min=1.0)
    m = targets.mask
    num = m.sum().clamp(min=1.0)
    reg = sum((F.l1_loss(student[k], teacher[k].detach(), reduction='none') * m).sum() / num
              for k in ('size', 'offset'))
    return heat + 0.1 * reg


@dataclass(frozen=True)
class Detections:
    boxes: np.ndarray  # [M, 4] x0 y0 x1 y1, network-input pixels
    scores: np.ndarray  # [M]
    classes: np.ndarray  # [M] int


def decode(out: dict[str, torch.Tensor], stride: int, score_threshold: float = 0.3,
           max_detections: int = 100) -> list[Detections]:
    """Peaks of the heatmap (3x3 max-pool NMS), top `max_detections`, above the threshold.

    Peaks are found on the logits: the sigmoid saturates to exactly 1.0 in float32 for
    confident objects, and the flat plateau it leaves would count as several peaks.
    """
    logits = out['heatmap']
    heat = torch.sigmoid(logits)
    n, c, h, w = heat.shape
    peaks = heat * (F.max_pool2d(logits, 3, 1, 1) == logits)
    k = min(max_detections, c * h * w)
    scores, index = peaks.reshape(n, -1).topk(k)
    results = []
    for i in range(n):
        keep = scores[i] >= score_threshold
        idx = index[i][keep]
        cls = idx // (h * w)
        pix = idx % (h * w)
        ys, xs = (pix // w), (pix % w)
        sz = out['size'][i, :, ys, xs]
        off = out['offset'][i, :, ys, xs]
        cx, cy = xs.float() + off[0], ys.float() + off[1]
        bw, bh = sz[0].clamp(min=0), sz[1].clamp(min=0)
        boxes = torch.stack([cx - bw / 2, cy - bh / 2, cx + bw / 2, cy + bh / 2], 1) * stride
        results.append(Detections(boxes.detach().cpu().numpy().astype(np.float64),
                                  scores[i][keep].detach().cpu().numpy().astype(np.float64),
                                  cls.cpu().numpy().astype(np.int64)))
    return results
