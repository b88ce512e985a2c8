"""DEMUX, the SLO controller (paper 5): the (P, k, levels) with the least expected accuracy
loss whose predicted latency and memory fit the SLO.

For each candidate (P, k) it starts from the gate's levels for that k, applies the CLG policy
step by step until the prediction fits (front + back from the profile, corrected online by the
measured/predicted ratio of control/correction.py, plus transmission of the tiles that are
sent when the supernet runs remotely), and scores the result with the accuracy table. The
prediction is linear in the level histogram, so every step updates it in O(1): a decision
over all candidates takes well under a millisecond. A frame with every tile skipped costs
nothing (no compute, nothing sent). When no candidate fits, the cheapest choice is returned,
flagged: under the CLG policies that is the dropped frame (all tiles skipped), under 'image'
and 'fixed' the cheapest width. The correction's safety margin (mean x a quantile of its
recent errors) only picks among plans: when nothing computed fits with it but something fits
with the mean, the frame is planned with the mean rather than dropped.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from typing import Callable, Mapping, Sequence

import numpy as np

from neulens_ros.control.accuracy import AccuracyTable
from neulens_ros.control.clg import DEFAULT_DELTA_W, LEVEL_SKIP, NARROWEST, POLICIES, steps
from neulens_ros.control.correction import OnlineCorrection
from neulens_ros.control.link_estimator import LinkState
from neulens_ros.control.predictor import Predictor
from neulens_ros.errors import ConfigError
from neulens_ros.levels import TILE_GRIDS


@dataclass(frozen=True)
class SloConfig:
    """The SLO and policy in force (swapped atomically when parameters change)."""

    latency_ms: float = 0.0  # 0 = no latency SLO
    memory_mb: float = 0.0  # 0 = no memory SLO
    policy: str = 'cs'
    fixed_level: int = 0  # used by policy 'fixed'
    theta_f: float = 0.5
    delta_w: Mapping[int, int] = field(default_factory=lambda: dict(DEFAULT_DELTA_W))
    k_options: tuple[int, ...] = TILE_GRIDS
    p_options: tuple[str, ...] = ('stem', 'layer1', 'layer2')
    # CLG skips a kept tile only once every kept tile is narrowest (see _fit for the link)
    skip_last: bool = True

    def __post_init__(self) -> None:
        problems = []
        if self.latency_ms < 0 or self.memory_mb < 0:
            problems.append('latency and memory SLOs must be >= 0 (0 = none)')
        if self.policy not in POLICIES:
            problems.append(f'policy {self.policy!r} is not one of {POLICIES}')
        if not 0 <= self.fixed_level <= LEVEL_SKIP:
            problems.append(f'fixed_level must be 0..{LEVEL_SKIP}')
        if not 0.0 <= self.theta_f <= 1.0:
            problems.append('theta_f must be in [0, 1]')
        if not self.k_options or not self.p_options:
            problems.append('k_options and p_options must not be empty')
        unsupported = sorted(set(self.k_options) - set(TILE_GRIDS))
        if unsupported:
            problems.append(f'k_options {unsupported} are not tile grids of {TILE_GRIDS}')
        missing = [k for k in self.k_options if self.delta_w.get(k, 0) < 1]
        if missing:
            problems.append(f'delta_w needs a value >= 1 for k = {missing}')
        if problems:
            raise ConfigError('invalid SLO config: ' + '; '.join(problems))


@dataclass(frozen=True)
class Decision:
    p: str
    k: int
    levels: tuple[int, ...]
    gate_levels: tuple[int, ...]
    predicted_latency_ms: float  # compute + transmission
    predicted_memory_mb: float
    transmission_ms: float
    fits_slo: bool
    expected_loss: float  # expected mAP@0.5 points lost
    decision_time_ms: float
    # the profile's compute (front + back, no online correction, no link) of the cheapest plan
    # that keeps every tile the policy starts from, each at the narrowest width, over every
    # candidate (P, k); 0 when the gate skipped every tile of some k (control/feasibility.py)
    floor_ms: float = 0.0


@dataclass
class Demux:
    predictor: Predictor
    accuracy: AccuracyTable
    config: SloConfig
    tile_pixels: Mapping[tuple[str, int], np.ndarray]  # (P, k) -> [k*k] pixels per tile
    bytes_per_pixel: float = 3.0  # of the tile encoding; updated from what was sent
    correction: OnlineCorrection = field(default_factory=OnlineCorrection)
    last: Decision | None = field(default=None, init=False)  # the latest decision

    def decide(self, gate_levels: Mapping[int, Sequence[int]],
               confidences: Mapping[int, Sequence[float]], link: LinkState | None = None
               ) -> Decision:
        """The best (P, k, levels) for this frame. gate_levels / confidences: k -> [k*k].
        Planned with the correction's ratio; when nothing computed fits that way, with its
        mean: the safety margin picks among plans, it never by itself drops a frame the mean
        would compute."""
        started = time.perf_counter()
        best, cheapest = self._search(gate_levels, confidences, link, self.correction.ratio)
        if best is None and self.correction.has_margin:
            best, cheapest = self._search(gate_levels, confidences, link, self.correction.mean)
        chosen = best or cheapest
        loss, latency, p, k, levels, memory, trans, fits = chosen
        self.last = Decision(p, k, tuple(levels), tuple(self.start_levels(k, gate_levels)),
                             latency, memory, trans, fits, loss,
                             1e3 * (time.perf_counter() - started),
                             self.floor_ms(gate_levels))
        return self.last

    def _search(self, gate_levels: Mapping[int, Sequence[int]],
                confidences: Mapping[int, Sequence[float]], link: LinkState | None,
                scale: Callable[[str, int], float]) -> tuple[tuple | None, tuple]:
        """(the fitting candidate of least loss or None, the cheapest candidate), with the
        predicted compute of (p, k) multiplied by scale(p, k)."""
        cfg = self.config
        best: tuple | None = None
        cheapest: tuple | None = None
        for k in cfg.k_options:
            base = self.start_levels(k, gate_levels)
            for p in cfg.p_options:
                result = self._fit(p, k, base, confidences.get(k, [1.0] * (k * k)), link,
                                   scale(p, k))
                latency, memory, trans, levels, fits = result
                if fits and min(base) < LEVEL_SKIP:
                    # a frame CLG had to drop entirely did not fit: it is only the fallback
                    fits = any(v != LEVEL_SKIP for v in levels)
                loss = self.accuracy.expected_loss(p, k, levels, base)
                entry = (loss, latency, p, k, levels, memory, trans, fits)
                if fits and (best is None or entry[:2] < best[:2]):
                    best = entry
                if cheapest is None or latency < cheapest[1]:
                    cheapest = entry
        assert cheapest is not None  # SloConfig has at least one k and one P
        return best, cheapest

    def floor_ms(self, gate_levels: Mapping[int, Sequence[int]]) -> float:
        """The profile's compute of the cheapest plan that keeps every tile the policy starts
        from (each at the narrowest width), over every candidate (P, k): what the frame costs
        at the least without losing a tile, before any online correction."""
        cfg = self.config
        costs = []
        for k in cfg.k_options:
            kept = sum(v != LEVEL_SKIP for v in self.start_levels(k, gate_levels))
            if not kept:
                return 0.0  # the gate skipped every tile: nothing to compute
            narrowest = [0] * NARROWEST + [kept, k * k - kept]
            costs += [self.predictor.latency[(p, k)](narrowest) + self.predictor.back_latency_ms[p]
                      for p in cfg.p_options]
        return min(costs)

    def start_levels(self, k: int, gate_levels: Mapping[int, Sequence[int]]) -> list[int]:
        """[k*k] the levels CLG starts from: the gate's, or the policy's own."""
        policy = self.config.policy
        if policy == 'fixed':
            return [self.config.fixed_level] * (k * k)
        if policy == 'image':
            return [0] * (k * k)
        return [int(v) for v in gate_levels[k]]

    def _fit(self, p: str, k: int, base: list[int], conf: Sequence[float],
             link: LinkState | None, scale: float
             ) -> tuple[float, float, float, list[int], bool]:
        """Apply CLG steps to the gate's levels until the prediction fits (pure Python on
        tiny lists: this runs for every candidate of every frame)."""
        cfg = self.config
        levels = list(base)
        hist = [0] * (LEVEL_SKIP + 1)
        for v in levels:
            hist[v] += 1
        lat_model = self.predictor.latency[(p, k)]
        mem_model = self.predictor.memory[(p, k)]
        back_lat = self.predictor.back_latency_ms[p]
        back_mem = self.predictor.back_memory_mb[p]
        pixels = self.tile_pixels[(p, k)]
        bits_per_ms = (link.bandwidth_mbps * 1e3) if link and link.bandwidth_mbps > 0 else 0.0
        rtt = link.rtt_ms if link else 0.0
        sent_bytes = self.bytes_per_pixel * float(
            sum(pixels[i] for i, v in enumerate(levels) if v != LEVEL_SKIP))

        def predict(histogram: list[int]) -> tuple[float, float, float]:
            if histogram[LEVEL_SKIP] == len(levels):  # nothing sent: the frame is dropped, free
                return 0.0, 0.0, 0.0
            trans = rtt + (8.0 * sent_bytes / bits_per_ms if bits_per_ms else 0.0)
            return ((lat_model(histogram) + back_lat) * scale + trans,
                    max(mem_model(histogram), back_mem), trans)

        def fits(latency: float, memory: float) -> bool:
            return ((cfg.latency_ms <= 0 or latency <= cfg.latency_ms)
                    and (cfg.memory_mb <= 0 or memory <= cfg.memory_mb))

        latency, memory, trans = predict(hist)
        if not fits(latency, memory):
            # narrowing saves compute and memory, not bytes: over a measured link, when even
            # every sent tile at the narrowest width does not fit, skip in the policy's order
            narrow_first = cfg.skip_last
            if narrow_first and bits_per_ms:
                narrowest = [0] * NARROWEST + [len(levels) - hist[LEVEL_SKIP], hist[LEVEL_SKIP]]
                narrow_first = fits(*predict(narrowest)[:2])
            for chosen in steps(levels, conf, cfg.policy, cfg.delta_w[k], cfg.theta_f,
                                narrow_first):
                for i in chosen:
                    old = levels[i]
                    levels[i] = old + 1
                    hist[old] -= 1
                    hist[old + 1] += 1
                    if old + 1 == LEVEL_SKIP:
                        sent_bytes -= pixels[i] * self.bytes_per_pixel
                latency, memory, trans = predict(hist)
                if fits(latency, memory):
                    break
        return latency, memory, trans, levels, fits(latency, memory)
