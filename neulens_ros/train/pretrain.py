"""Backbone pre-training on object crops of the training set, before the supernet steps.

The role ImageNet pre-training plays for real detectors: the full-width stages learn to tell
the classes apart on 64 x 64 windows centred on each training object (native resolution,
horizontal flips), through global average pooling and a linear layer that is then dropped.
On the hard preset a detector trained from scratch kept its shape and surface accuracy at
chance for its first thousand steps, while the same stages reached 57% on crops within 600
steps; the CenterNet heads then start from features that separate the classes.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch
from torch import nn

from neulens_ros.errors import ConfigError
from neulens_ros.supernet.detector import TileDetector
from neulens_ros.supernet.executor import normalise
from neulens_ros.train.data import DetectionSet


@dataclass(frozen=True)
class Pretraining:
    """Sizes of the crop pre-training; validated on creation."""

    steps: int = 600
    batch_size: int = 64
    window: int = 64  # pixels of the network input around each object's centre
    lr: float = 2e-3
    seed: int = 0

    def __post_init__(self) -> None:
        if self.steps < 0 or self.batch_size < 1 or self.window < 32 or self.lr <= 0:
            raise ConfigError(f'invalid Pretraining {self}: steps >= 0, batch_size >= 1, '
                              'window >= 32 and lr > 0')


def object_crops(data: DetectionSet, window: int) -> tuple[np.ndarray, np.ndarray]:
    """(windows [M, window, window, 3] uint8 centred on every object, zero-padded at the
    frame's border; classes [M] int64)."""
    half = window // 2
    crops, classes = [], []
    for image, boxes, labels in zip(data.images, data.boxes, data.classes, strict=True):
        padded = np.pad(image, ((half, half), (half, half), (0, 0)))
        for (x0, y0, x1, y1), label in zip(boxes, labels, strict=True):
            cx, cy = int((x0 + x1) / 2) + half, int((y0 + y1) / 2) + half
            crops.append(padded[cy - half:cy + half, cx - half:cx + half])
            classes.append(int(label))
    if not crops:
        raise ConfigError('no objects in the training set to pre-train on')
    return np.stack(crops), np.array(classes, np.int64)


def pretrain_backbone(model: TileDetector, data: DetectionSet, cfg: Pretraining,
                      progress: bool = True) -> list[dict]:
    """Train the full-width stages of `model` in place as a crop classifier; returns the
    history (step, loss, accuracy of the batch)."""
    from neulens_ros.progress import progress_bar
    if cfg.steps == 0:
        return []
    torch.manual_seed(cfg.seed)
    rng = np.random.default_rng([cfg.seed, 7])
    crops, classes = object_crops(data, cfg.window)
    width = model.config.widths[-1]
    net = nn.Sequential(*model.stages(), nn.AdaptiveAvgPool2d(1), nn.Flatten(),
                        nn.Linear(width, model.config.num_classes))
    opt = torch.optim.Adam(net.parameters(), lr=cfg.lr)
    net.train()
    history = []
    for step in progress_bar(range(cfg.steps), desc='pretrain', unit='step', disable=not progress):
        idx = rng.integers(0, len(classes), cfg.batch_size)
        batch = crops[idx]
        flips = rng.random(cfg.batch_size) < 0.5
        batch[flips] = batch[flips, :, ::-1]
        x = normalise(torch.from_numpy(np.ascontiguousarray(batch)).permute(0, 3, 1, 2))
        y = torch.from_numpy(classes[idx])
        logits = net(x)
        loss = nn.functional.cross_entropy(logits, y)
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
        history.append({'step': step + 1, 'loss': loss.item(),
                        'accuracy': float((logits.argmax(1) == y).float().mean())})
    model.eval()
    return history
