"""The headset step: a camera frame -> (tile decision, the tiles worth sending).

The frame is resized to the network input, the CGG scores every tile for every k on offer,
DEMUX picks (P, k, levels) under the SLO in force (with the link's measured bandwidth and
round-trip time when the supernet runs remotely), and the non-skipped tiles are cut out with
the model's tile geometry for that (P, k).
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import torch

from neulens_ros.control.accuracy import AccuracyTable
from neulens_ros.control.demux import Demux, SloConfig
from neulens_ros.control.link_estimator import LinkState
from neulens_ros.control.predictor import Predictor
from neulens_ros.data.resize import box_resize
from neulens_ros.errors import ConfigError
from neulens_ros.eval.oracle import OracleRule
from neulens_ros.gate.cgg import CompressionGuidingGate, run_gate
from neulens_ros.gate.calibration import halo_warning
from neulens_ros.gate.kind_labels import gate_operating_point, rule_levels
from neulens_ros.gate.prior import PreviousDetections, apply_prior
from neulens_ros.gate.runtime import gate_net
from neulens_ros.gate.tile_kinds import owned_blocks
from neulens_ros.levels import TILE_GRIDS
from neulens_ros.models.zoo import (DETECTOR, GATE, accuracy_file, detector_halo,
                                   load_detector, load_gate, predictor_file)
from neulens_ros.pipeline.decision import FrameDecision
from neulens_ros.pipeline.tiles import crop_tiles
from neulens_ros.supernet.detector import P_LAYERS, P_OPTIONS, TileDetector
from neulens_ros.supernet.tiling import TileGrid, tile_grid, window_chain



@dataclass(frozen=True)
class GateFrame:
    decision: FrameDecision
    tiles: dict[int, np.ndarray]  # non-skipped tiles, [h, w, 3] uint8 each
    input_image: np.ndarray = field(repr=False)  # [H_in, W_in, 3] the network input


class HeadsetGate:
    """CGG + DEMUX + tile cutting for one camera stream."""

    def __init__(self, gate: CompressionGuidingGate, model: TileDetector, predictor: Predictor,
                 accuracy: AccuracyTable, slo: SloConfig, halo: str = 'paper',
                 caution: float = 0.0, gate_backend: str = 'onnxruntime',
                 kind_rule: OracleRule | None = None,
                 calibration_warning: str | None = None) -> None:
        self.gate = gate_net(gate, gate_backend)
        # calibrated with the gate (gate/calibration.py): its caution and, for a gate on
        # tile kinds, the rule that levels the kinds it chooses (None: its levels as they are);
        # calibration_warning: why they may not hold for this detector (halo_warning)
        self.caution = caution
        self.kind_rule = kind_rule
        self.calibration_warning = calibration_warning
        cfg = model.config
        self.input_size = (cfg.input_width, cfg.input_height)
        self.halo = halo
        unknown = sorted(set(slo.p_options) - set(P_OPTIONS))
        if unknown:
            raise ConfigError(f'split points {unknown} are not options of the model '
                              f'{P_OPTIONS}')
        self.grids: dict[tuple[str, int], TileGrid] = {
            (p, k): tile_grid(window_chain(model.front(p)), *self.input_size, k, halo)
            for p in P_OPTIONS for k in TILE_GRIDS}
        # where the temporal prior places earlier detections: the blocks each tile owns at
        # the deepest split point (as `neulens-eval stream` evaluates it), [T, 4] per k
        self.owned = {k: owned_blocks(self.grids[(P_OPTIONS[-1], k)]) for k in TILE_GRIDS}
        pixels = {key: (g.in_rects[:, 2] - g.in_rects[:, 0]) * (g.in_rects[:, 3]
                                                                  - g.in_rects[:, 1])
                  for key, g in self.grids.items()}
        self.demux = Demux(predictor, accuracy, slo, pixels)

    @classmethod
    def load(cls, slo: SloConfig, gate: str = GATE, detector: str = DETECTOR,
             predictor: Path | None = None, accuracy: Path | None = None,
             gate_backend: str = 'onnxruntime') -> 'HeadsetGate':
        """From checkpoints; the latency profile and the accuracy table are the detector's own
        unless given."""
        model, meta = load_detector(detector)
        cgg, gate_meta = load_gate(gate)
        table = AccuracyTable.load(accuracy or accuracy_file(detector))
        # the calibrated point alone (gate/calibration.py shipped_points would also read the
        # budget sweep, which the headset never runs, and refuse a gate over it)
        caution, rule = gate_operating_point(gate_meta)
        halo = detector_halo(meta)
        profile = predictor or predictor_file(detector)
        latency = Predictor.load(profile)
        if latency.halo != halo:
            raise ConfigError(f'the latency profile {profile} was measured with the '
                              f'{latency.halo!r} halo but {detector} runs its tiles with '
                              f'{halo!r}: profile it again (neulens-profile --detector '
                              f'{detector})')
        return cls(cgg, model, latency, table, slo, halo, caution, gate_backend, rule,
                   halo_warning(gate_meta, halo))

    def set_slo(self, slo: SloConfig) -> None:
        """Swap the SLO atomically (the next frame uses it)."""
        self.demux.config = slo

    @torch.inference_mode()
    def process(self, rgb: np.ndarray, stamp_ns: int, frame_id: str,
                link: LinkState | None = None,
                image_size: tuple[int, int] | None = None,
                previous: PreviousDetections | None = None) -> GateFrame:
        """`rgb` [H, W, 3] is the camera frame, or the network input already resized from a
        camera frame of `image_size` (width, height). `previous`: detections of an earlier
        frame, whose temporal prior caps the gate's levels (gate/prior.py)."""
        started = time.perf_counter()
        image = box_resize(rgb, self.input_size)
        slo = self.demux.config
        levels, confidences = {}, {}
        for k in slo.k_options:
            out = run_gate(self.gate, image, k, self.caution)
            chosen = rule_levels(out.levels, self.kind_rule)
            if previous is not None:
                chosen = apply_prior(chosen, previous.boxes, previous.scores, self.owned[k],
                                     previous.config)
            levels[k] = chosen.tolist()
            confidences[k] = out.confidences.tolist()
        gate_ms = 1e3 * (time.perf_counter() - started)
        choice = self.demux.decide(levels, confidences, link)
        grid = self.grids[(choice.p, choice.k)]
        decision = FrameDecision(
            stamp_ns=stamp_ns, frame_id=frame_id,
            image_size=image_size or (rgb.shape[1], rgb.shape[0]),
            input_size=self.input_size, k=choice.k, p_index=P_OPTIONS.index(choice.p),
            p_layers=P_LAYERS[choice.p], halo=self.halo, levels=choice.levels,
            tile_rects=grid.in_rects, gate_levels=choice.gate_levels,
            confidences=tuple(float(c) for c in confidences[choice.k]), policy=slo.policy,
            latency_slo_ms=slo.latency_ms, memory_slo_mb=slo.memory_mb,
            bandwidth_mbps=link.bandwidth_mbps if link else 0.0,
            rtt_ms=link.rtt_ms if link else 0.0,
            predicted_latency_ms=choice.predicted_latency_ms,
            predicted_memory_mb=choice.predicted_memory_mb, fits_slo=choice.fits_slo,
            gate_time_ms=gate_ms, demux_time_ms=choice.decision_time_ms)
        tiles = crop_tiles(image, grid.in_rects, decision.sent_tiles)
        return GateFrame(decision, tiles, image)

    def observe_encoding(self, payload_bytes: int, pixels: int) -> None:
        """Update the bytes-per-pixel DEMUX assumes for the tile encoding (EWMA)."""
        if pixels > 0:
            bpp = payload_bytes / pixels
            self.demux.bytes_per_pixel = 0.8 * self.demux.bytes_per_pixel + 0.2 * bpp

    def observe_compute(self, decision: FrameDecision, measured_ms: float) -> None:
        """Feed the edge's measured compute time back into DEMUX's online correction (a
        dropped frame, with nothing computed, relaxes it instead)."""
        if not decision.sent_tiles:
            self.demux.correction.relax()
            return
        p = P_OPTIONS[decision.p_index]
        predicted = self.demux.predictor.predict(p, decision.k,
                                                 decision.level_histogram())[0]
        self.demux.correction.update(p, decision.k, predicted, measured_ms)

