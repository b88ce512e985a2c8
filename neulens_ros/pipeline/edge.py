"""The edge step: the tiles a headset sent + its decision -> detections in image pixels.

EdgeDetector loads the detector once, keeps one micro-flow executor per split point (with the
backend's per-level runners), checks every decision against what it can serve (k, P, input
size, the tile geometry of the model) and runs: per-level batched fronts on the received tiles,
stitch, back, CenterNet decoding, boxes scaled from the network input to the original frame
and clipped to it.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from typing import Mapping

import numpy as np
import torch

from neulens_ros.errors import ConfigError, GeometryError
from neulens_ros.levels import TILE_GRIDS
from neulens_ros.models.zoo import DETECTOR, detector_halo, load_detector
from neulens_ros.pipeline.decision import FrameDecision
from neulens_ros.runtime.backends import BACKENDS, make_runners
from neulens_ros.supernet.centernet import decode
from neulens_ros.supernet.detector import P_OPTIONS, TileDetector
from neulens_ros.supernet.executor import MicroFlowExecutor, tiles_to_tensors
from neulens_ros.supernet.tiling import TileGrid


@dataclass(frozen=True)
class EdgeConfig:
    checkpoint: str = DETECTOR
    backend: str = 'auto'
    precision: str = 'fp32'
    num_threads: int = 0
    cache_dir: str = ''
    # onnxruntime: also one session per batch size of every tile size (faster, slower start)
    static_batches: bool = False
    k_options: tuple[int, ...] = TILE_GRIDS
    score_threshold: float = 0.3
    max_detections: int = 100

    def __post_init__(self) -> None:
        if self.backend not in BACKENDS:
            raise ConfigError(f'backend {self.backend!r} is not one of {BACKENDS}')
        if not self.k_options or min(self.k_options) < 1:
            raise ConfigError(f'k_options must be positive, got {self.k_options}')


@dataclass(frozen=True)
class EdgeResult:
    boxes: np.ndarray  # [M, 4] x0 y0 x1 y1 in original image pixels, within the image
    class_ids: np.ndarray  # [M]
    scores: np.ndarray  # [M]
    compute_ms: float
    tiles_run: int


class EdgeDetector:
    """The detector the supernet node serves, with per-P executors."""

    def __init__(self, model: TileDetector, config: EdgeConfig, meta: Mapping) -> None:
        self.model = model.eval()
        self.config = config
        self.meta = dict(meta)
        self.score_threshold = config.score_threshold
        self.max_detections = config.max_detections
        if config.num_threads:
            torch.set_num_threads(config.num_threads)
        self.backend_name, runners = make_runners(model, config.backend, config.precision,
                                                  config.cache_dir, max(config.k_options) ** 2,
                                                  config.static_batches, config.k_options,
                                                  detector_halo(meta))
        self.executors = {p: MicroFlowExecutor(model, p, runners.get(p)) for p in P_OPTIONS}

    @classmethod
    def load(cls, config: EdgeConfig) -> 'EdgeDetector':
        model, meta = load_detector(config.checkpoint)
        edge = cls(model, config, meta)
        edge.warm_up(detector_halo(meta))
        return edge

    @torch.inference_mode()
    def warm_up(self, halo: str) -> None:
        """One full-width frame per (P, k), so the first real frame does not pay for kernel
        selection and allocation."""
        cfg = self.model.config
        image = torch.zeros(1, 3, cfg.input_height, cfg.input_width)
        for executor in self.executors.values():
            for k in self.config.k_options:
                executor(image, np.zeros((1, k * k), np.int64), k, halo)
            executor.calls.clear()
            executor.tiles_run.clear()

    def describe(self) -> str:
        cfg = self.model.config
        return (f'{self.config.checkpoint} ({cfg.input_width}x{cfg.input_height} input, '
                f'P options {", ".join(P_OPTIONS)}, k {list(self.config.k_options)}) on '
                f'{self.backend_name}/{self.config.precision}')

    def set_output_limits(self, score_threshold: float, max_detections: int) -> None:
        self.score_threshold = score_threshold
        self.max_detections = max_detections

    def check(self, decision: FrameDecision) -> tuple[MicroFlowExecutor, TileGrid]:
        """The executor and tile grid for `decision`, or a clear error saying why it cannot
        be served."""
        cfg = self.model.config
        if decision.k not in self.config.k_options:
            raise ConfigError(f'k={decision.k} is not served here (k_options '
                              f'{list(self.config.k_options)})')
        if not 0 <= decision.p_index < len(P_OPTIONS):
            raise ConfigError(f'split point index {decision.p_index} is out of range (model has '
                              f'{len(P_OPTIONS)} options)')
        if decision.input_size != (cfg.input_width, cfg.input_height):
            raise GeometryError(f'tiles were cut from a {decision.input_size[0]}x'
                                f'{decision.input_size[1]} input; this model takes '
                                f'{cfg.input_width}x{cfg.input_height}')
        executor = self.executors[P_OPTIONS[decision.p_index]]
        grid = executor.grid(cfg.input_width, cfg.input_height, decision.k, decision.halo)
        if not np.array_equal(grid.in_rects, decision.tile_rects):
            raise GeometryError('the decision\'s tile rectangles differ from this model\'s '
                                f'geometry for P={P_OPTIONS[decision.p_index]}, k={decision.k}, '
                                f'halo {decision.halo}: headset and edge run different models')
        return executor, grid

    @torch.inference_mode()
    def run(self, decision: FrameDecision, tiles: Mapping[int, np.ndarray]) -> EdgeResult:
        """Detections for one frame from its non-skipped tiles ({index: [h, w, 3] uint8})."""
        started = time.perf_counter()
        executor, grid = self.check(decision)
        if not decision.sent_tiles:  # every tile skipped: nothing to compute, nothing found
            empty = np.zeros((0, 4))
            return EdgeResult(empty, np.zeros(0, np.int64), np.zeros(0), 0.0, 0)
        cfg = self.model.config
        before = sum(executor.tiles_run.values())
        feats = executor.stitch(tiles_to_tensors(tiles, grid), np.asarray(decision.levels),
                                grid)
        out = self.model.back(executor.p, feats)
        det = decode(out, cfg.output_stride, self.score_threshold, self.max_detections)[0]
        width, height = decision.image_size
        sx, sy = width / cfg.input_width, height / cfg.input_height
        # a box of an object cut by the frame's edge may reach past it: clipped to the image
        boxes = np.clip(det.boxes * np.array([sx, sy, sx, sy]), 0.0,
                        np.array([width, height, width, height], np.float64))
        return EdgeResult(boxes, det.classes, det.scores, 1e3 * (time.perf_counter() - started),
                          sum(executor.tiles_run.values()) - before)
