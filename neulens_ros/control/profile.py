"""Profiling the real front and back on this machine for the DEMUX predictors (paper 5.3).

For every (P, k) the micro-flow executor runs the front over one frame's tiles with random
per-tile levels (covering the level histograms), timed as the median of repeated warmed-up
runs taken round robin over the histograms (runtime/timing.py); the back runs once per P.
Memory on the CPU is the activation footprint a caching allocator ends up reserving for one
frame: for every level batch its input and its largest layer output (batches run one after
another, and freed blocks stay reserved), plus the stitched map, from the real tensor sizes
(a GPU build would read the allocator's peak).
"""

from __future__ import annotations

from typing import Iterator, Mapping

import numpy as np
import torch
from torch import nn

from neulens_ros.control.predictor import ProfileRecord
from neulens_ros.runtime.backends import Runner
from neulens_ros.runtime.timing import round_robin_ms
from neulens_ros.supernet.detector import TileDetector
from neulens_ros.supernet.executor import MicroFlowExecutor, crop_frames
from neulens_ros.supernet.slim import LEVEL_SKIP

MB = 1024.0 * 1024.0


class PeakActivation:
    """Largest single layer output (bytes) per forward call of `module`, via hooks."""

    def __init__(self, module: nn.Module) -> None:
        self.module = module
        self.peak = 0  # of the current call
        self.per_call: list[int] = []  # peaks of finished calls
        self.handles: list = []

    def __enter__(self) -> 'PeakActivation':
        def hook(m: nn.Module, _i: object, out: object) -> None:
            if isinstance(out, torch.Tensor):
                self.peak = max(self.peak, out.numel() * out.element_size())
            if m is self.module:  # the outer call finished
                self.per_call.append(self.peak)
                self.peak = 0
        self.handles = [m.register_forward_hook(hook) for m in self.module.modules()
                        if next(m.children(), None) is None or m is self.module]
        return self

    def __exit__(self, *exc: object) -> None:
        for h in self.handles:
            h.remove()


@torch.inference_mode()
def profile_front(model: TileDetector, p: str, k: int, halo: str, samples: int,
                  repeats: int, rng: np.random.Generator,
                  runners: Mapping[int, Runner] | None = None) -> Iterator[ProfileRecord]:
    """Records of `samples` level histograms of the front at (p, k), run by `runners`
    (level -> compiled front of runtime/backends.py; None = the eager slimmable front)."""
    cfg = model.config
    executor = MicroFlowExecutor(model, p, runners)
    eager = executor if not runners else MicroFlowExecutor(model, p)  # hooks see its layers
    grid = executor.grid(cfg.input_width, cfg.input_height, k, halo)
    image = torch.randn(1, 3, cfg.input_height, cfg.input_width)
    tiles = crop_frames(image, grid)
    # every histogram shape: the uniform levels anchor the fit, then random levels
    assignments = [np.full(k * k, i) if i < LEVEL_SKIP + 1
                   else rng.integers(0, LEVEL_SKIP + 1, k * k) for i in range(samples)]
    # timed round robin over the histograms, so machine drift does not pass for a trend
    latency = round_robin_ms({i: (lambda lv=levels: executor.stitch(tiles, lv, grid))
                              for i, levels in enumerate(assignments)}, repeats)
    for i, levels in enumerate(assignments):
        with PeakActivation(eager.front) as peak:
            out = eager.stitch(tiles, levels, grid)
        tile_bytes = tiles[0].numel() * tiles[0].element_size()  # paper tiles: one size
        inputs = tile_bytes * int(np.sum(levels != LEVEL_SKIP))
        memory = (sum(peak.per_call) + inputs + out.numel() * out.element_size()) / MB
        hist = tuple(int(v) for v in np.bincount(levels, minlength=LEVEL_SKIP + 1))
        yield ProfileRecord(p, k, hist, latency[i], memory)


@torch.inference_mode()
def profile_back(model: TileDetector, p: str, repeats: int) -> ProfileRecord:
    cfg = model.config
    front = model.front(p)
    feats = front(torch.randn(1, 3, cfg.input_height, cfg.input_width))
    latency = round_robin_ms({p: lambda: model.back(p, feats)}, repeats)[p]
    with PeakActivation(model) as peak:
        model.back(p, feats)
    memory = (peak.peak + feats.numel() * feats.element_size()) / MB  # back: one big call
    return ProfileRecord(p, 0, (0,) * (LEVEL_SKIP + 1), latency, memory)
