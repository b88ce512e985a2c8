"""Training the CGG (paper 4.4): loss = (1 - a) task loss + a tile classification loss.

The classification loss is cross-entropy against the labelling rule's level. The task loss
goes through the gate's choice with a straight-through Gumbel-softmax sample y [T, R]:
sum_l y_l * (errors[t, l] + cost_weight * mac_ratio[l]), where errors[t, l] is the measured
number of detections that change when tile t alone runs at level l (from the labelling pass)
and mac_ratio[l] the measured MAC fraction of level l; so choosing a level is charged what it
really costs in detections and in compute. One gate serves every k (tiles of all k are mixed).

A gate on ground-truth tile kinds (gate/kind_labels.py) trains on cross-entropy alone, whole
frames at a time (its context input needs a frame's tiles together): each step takes frames of
one k, about `batch_size` tiles of them, the k of the steps shuffled, on a cosine learning
rate (`train_frame_gate`).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch
from torch import nn
from torch.nn import functional as F

from neulens_ros.errors import ConfigError, DataError
from neulens_ros.gate.cgg import CompressionGuidingGate, normalise_tiles
from neulens_ros.gate.kind_labels import FrameGateData


@dataclass(frozen=True)
class GateTraining:
    epochs: int = 30
    batch_size: int = 256
    lr: float = 3e-3
    alpha: float = 0.7  # weight of the classification loss (paper: a = 0.7)
    cost_weight: float = 0.5  # MAC fraction against one changed detection
    tau: float = 1.0  # Gumbel-softmax temperature
    seed: int = 0


@dataclass(frozen=True)
class GateData:
    inputs: torch.Tensor  # [T, 3, 28, 28] normalised tiles
    labels: torch.Tensor  # [T] int level
    errors: torch.Tensor  # [T, R] float changed detections per level


def require_tiles(count: int, purpose: str) -> int:
    """`count` tiles, or DataError when there are none for `purpose`."""
    if count == 0:
        raise DataError(f'no labelled tiles to {purpose}: the training set is too small for '
                        'the held-out, calibration and fitting images the plan asks for')
    return count


def frame_tiles(data: dict[int, FrameGateData]) -> int:
    """Tiles over every k of frame data."""
    return sum(frames.labels.numel() for frames in data.values())


def gate_loss(logits: torch.Tensor, labels: torch.Tensor, errors: torch.Tensor,
              mac_ratio: torch.Tensor, cfg: GateTraining) -> torch.Tensor:
    choice = F.gumbel_softmax(logits, tau=cfg.tau, hard=True)  # [T, R], straight-through
    task = (choice * (errors + cfg.cost_weight * mac_ratio)).sum(1).mean()
    return (1 - cfg.alpha) * task + cfg.alpha * F.cross_entropy(logits, labels)


def train_gate(gate: nn.Module, data: GateData, mac_ratio: np.ndarray, cfg: GateTraining,
               progress: bool = True) -> list[dict]:
    """Train `gate` ([T, 3, 28, 28] -> [T, R]: the CGG without context, or a capacity
    probe) in place, tile by tile; returns per-epoch loss and training accuracy."""
    from neulens_ros.progress import progress_bar
    if getattr(gate, 'context', 0):
        raise ConfigError('a gate with context scores whole frames: train it with '
                          'train_frame_gate')
    n = require_tiles(len(data.labels), 'train the gate on')
    torch.manual_seed(cfg.seed)
    opt = torch.optim.Adam(gate.parameters(), lr=cfg.lr)
    ratio = torch.as_tensor(mac_ratio, dtype=torch.float32)
    history = []
    gate.train()
    for epoch in progress_bar(range(cfg.epochs), desc='gate', unit='epoch', disable=not progress):
        order = torch.randperm(n)
        total, correct = 0.0, 0
        for start in range(0, n, cfg.batch_size):
            idx = order[start:start + cfg.batch_size]
            logits = gate(data.inputs[idx])
            loss = gate_loss(logits, data.labels[idx], data.errors[idx], ratio, cfg)
            opt.zero_grad(set_to_none=True)
            loss.backward()
            opt.step()
            total += loss.item() * len(idx)
            correct += int((logits.argmax(1) == data.labels[idx]).sum())
        history.append({'epoch': epoch + 1, 'loss': total / n, 'accuracy': correct / n})
    gate.eval()
    return history


@torch.no_grad()
def gate_accuracy(gate: nn.Module, data: GateData) -> float:
    require_tiles(len(data.labels), 'measure the gate on')
    gate.eval()
    return float((gate(data.inputs).argmax(1) == data.labels).float().mean())


def _frame_batches(data: dict[int, FrameGateData], tiles_per_batch: int
                   ) -> list[tuple[int, torch.Tensor]]:
    """(k, frame indices) of one epoch: each k's frames shuffled, about `tiles_per_batch`
    tiles per batch, the batches of all k in random order."""
    batches = []
    for k, frames in data.items():
        size = max(1, tiles_per_batch // (k * k))
        order = torch.randperm(len(frames))
        batches += [(k, order[s:s + size]) for s in range(0, len(frames), size)]
    return [batches[i] for i in torch.randperm(len(batches)).tolist()]


def train_frame_gate(gate: CompressionGuidingGate, data: dict[int, FrameGateData],
                     cfg: GateTraining, progress: bool = True) -> list[dict]:
    """Train in place on whole frames (cross-entropy against their labels); returns per-epoch
    loss and training accuracy."""
    from neulens_ros.progress import progress_bar
    tiles = require_tiles(frame_tiles(data), 'train the gate on')
    torch.manual_seed(cfg.seed)
    opt = torch.optim.Adam(gate.parameters(), lr=cfg.lr)
    schedule = torch.optim.lr_scheduler.CosineAnnealingLR(opt, cfg.epochs)
    history = []
    gate.train()
    for epoch in progress_bar(range(cfg.epochs), desc='gate', unit='epoch', disable=not progress):
        total, correct = 0.0, 0
        for k, idx in _frame_batches(data, cfg.batch_size):
            frames = data[k]
            logits = gate.frames(normalise_tiles(frames.tiles[idx])).flatten(0, 1)  # [B*T, R]
            labels = frames.labels[idx].flatten()  # [B*T]
            loss = F.cross_entropy(logits, labels)
            opt.zero_grad(set_to_none=True)
            loss.backward()
            opt.step()
            total += loss.item() * len(labels)
            correct += int((logits.argmax(1) == labels).sum())
        schedule.step()
        history.append({'epoch': epoch + 1, 'loss': total / tiles, 'accuracy': correct / tiles})
    gate.eval()
    return history


@torch.no_grad()
def frame_gate_accuracy(gate: CompressionGuidingGate, data: dict[int, FrameGateData]) -> float:
    """Share of tiles whose arg-max level is their label, over every k."""
    tiles = require_tiles(frame_tiles(data), 'measure the gate on')
    gate.eval()
    correct = sum(int((gate.frames(normalise_tiles(tiles)).argmax(2) == labels).sum())
                  for frames in data.values()
                  for tiles, labels in zip(frames.tiles.split(256), frames.labels.split(256),
                                           strict=True))
    return correct / tiles
