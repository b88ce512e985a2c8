"""Training the CGG (paper 4.4): loss = (1 - a) task loss + a tile classification loss.

The classification loss is cross-entropy against the labelling rule's level. The task loss
goes through the gate's choice with a straight-through Gumbel-softmax sample y [T, R]:
sum_l y_l * (errors[t, l] + cost_weight * mac_ratio[l]), where errors[t, l] is the measured
number of detections that change when tile t alone runs at level l (from the labelling pass)
and mac_ratio[l] the measured MAC fraction of level l; so choosing a level is charged what it
really costs in detections and in compute. One gate serves every k (tiles of all k are mixed).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch
from torch.nn import functional as F

from neulens_ros.gate.cgg import CompressionGuidingGate


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


def gate_loss(logits: torch.Tensor, labels: torch.Tensor, errors: torch.Tensor,
              mac_ratio: torch.Tensor, cfg: GateTraining) -> torch.Tensor:
    choice = F.gumbel_softmax(logits, tau=cfg.tau, hard=True)  # [T, R], straight-through
    task = (choice * (errors + cfg.cost_weight * mac_ratio)).sum(1).mean()
    return (1 - cfg.alpha) * task + cfg.alpha * F.cross_entropy(logits, labels)


def train_gate(gate: CompressionGuidingGate, data: GateData, mac_ratio: np.ndarray,
               cfg: GateTraining, progress: bool = True) -> list[dict]:
    """Train in place; returns per-epoch loss and training accuracy."""
    from neulens_ros.progress import progress_bar
    torch.manual_seed(cfg.seed)
    opt = torch.optim.Adam(gate.parameters(), lr=cfg.lr)
    ratio = torch.as_tensor(mac_ratio, dtype=torch.float32)
    history = []
    n = len(data.labels)
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
def gate_accuracy(gate: CompressionGuidingGate, data: GateData) -> float:
    gate.eval()
    return float((gate(data.inputs).argmax(1) == data.labels).float().mean())
