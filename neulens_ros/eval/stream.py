"""The detector and the gate on held-out walks (continuous sequences), frame by frame.

The frames of `walks` sequences of `frames` frames each (a DetectionSet of walks, train/data.py
SetSpec.walk_frames), resized to the detector's input as the pipeline does. Variants, side by
side on the same frames (all at the shipped split point, grid and halo, eval/detector.py):
- image-level width: every uniform level 0..3, and the untiled model at each level's width
  (the floor without tiles);
- the paper's CGG at each caution (`cgg_c<caution>`: the shipped one and STREAM_CAUTIONS, a
  range of MACs; a gate on tile kinds calibrated with a kind rule runs it at every caution);
- for a gate on tile kinds, every oracle rule on the kinds it chose at the shipped caution
  (`cgg_kinds_<rule>`, eval/detector.py), in the CGG's family;
- the gate at the point its calibration chose for each MAC budget (`cgg_budget_<percent>`,
  eval/detector.py budget_family), in the CGG's family;
- the CGG + temporal prior at the same cautions (`cgg_prior_c<caution>`, gate/prior.py), run
  in a closed loop: frame i's levels are the gate's capped by the prior of the detections
  this same variant made on frame i - 1 (the first frame of a walk has the gate's alone);
  all walks advance together, frame t of every walk in one batch; for a gate on tile kinds
  also every oracle rule on its kinds with the prior in the same loop
  (`cgg_prior_kinds_<rule>`), and each budget point (`cgg_prior_budget_<percent>`), in the
  CGG + prior's family;
- the ground-truth oracle family and random tiles at each budget (eval/oracle.py).
Each gets mAP@0.5 (over all frames of the walks), MACs per frame (front + back) and, for the
gates, the level histogram; `budgets` reads width, oracle, CGG and CGG + prior at 40, 55 and
70% of level 0's MACs (eval/oracle.py budget_rows). `agreement`: on `label_frames` frames
spread over the walks, the tiles' labels (gate/labels.py, k = 3, as training labels them)
against the levels each gate variant used there. `gate_cost` times the gate per frame on
ONNX Runtime (one thread) with and without the prior.
"""

from __future__ import annotations

import itertools
from functools import partial
from pathlib import Path
from typing import Any, Callable, Mapping, Sequence

import numpy as np

from neulens_ros.errors import DataError
from neulens_ros.eval.detector import (BUDGET_POINT, SHIP_HALO, SHIP_K, SHIP_P,
                                       UNTILED_WIDTH, WIDTH, budget_family, budget_record,
                                       budgets, cgg_label, check_gate_labels, curve,
                                       draw_families, job_key, kinds_family, level_jobs,
                                       mark_points, normalised_images, points, random_tiles,
                                       run_once, run_variant, save_plot, untiled_width_jobs)
from neulens_ros.eval.oracle import OracleRule, oracle_levels
from neulens_ros.gate.calibration import gate_levels
from neulens_ros.gate.cgg import CompressionGuidingGate, run_gate
from neulens_ros.gate.kind_labels import OperatingPoint, check_rule, rule_label, rule_levels
from neulens_ros.gate.labels import label_frame
from neulens_ros.gate.prior import PriorConfig, apply_prior
from neulens_ros.gate.runtime import gate_net, time_gate
from neulens_ros.gate.tile_kinds import owned_blocks
from neulens_ros.levels import NUM_LEVELS, TILE_GRIDS
from neulens_ros.plots import pyplot
from neulens_ros.supernet.centernet import Detections
from neulens_ros.supernet.detector import TileDetector
from neulens_ros.supernet.executor import MicroFlowExecutor
from neulens_ros.supernet.macs import MacTable
from neulens_ros.supernet.tiling import TileGrid
from neulens_ros.train.data import DetectionSet

STREAM_CAUTIONS = (-0.5, -0.25, 0.0, 0.25, 0.5, 1.0, 2.0)  # beside the shipped one


def cgg_name(caution: float, prior: bool = False) -> str:
    return f'cgg{"_prior" if prior else ""}_c{caution:g}'


def prior_name(name: str) -> str:
    """The CGG + prior family's name of the CGG family's variant `name` (`cgg_c1` ->
    `cgg_prior_c1`, `cgg_kinds_<rule>` -> `cgg_prior_kinds_<rule>`, `cgg_budget_40` ->
    `cgg_prior_budget_40`)."""
    return name.replace('cgg_', 'cgg_prior_', 1)


def walk_order(count: int, frames: int) -> list[list[int]]:
    """Batches of frame indices of `count` frames of walks `frames` long, one after the other:
    batch t holds frame t of every walk."""
    if frames < 1 or count % frames:
        raise DataError(f'{count} frames are no whole number of walks of {frames} frames')
    return [list(range(t, count, frames)) for t in range(frames)]


class PriorLoop:
    """The levels of the gate + temporal prior, fed back frame by frame: a LevelFn for
    run_variant whose `observe` records each frame's detections."""

    def __init__(self, gate: np.ndarray, frames: int, owned: np.ndarray,
                 config: PriorConfig) -> None:
        self.gate = gate  # [N, T] the gate's levels
        self.frames = frames  # per walk
        self.owned = owned  # [T, 4] owned blocks, input pixels
        self.config = config
        self.levels = gate.copy()  # [N, T] the levels used, filled in as the loop runs
        self.detections: dict[int, Detections] = {}

    def __call__(self, i: int) -> np.ndarray:
        if i % self.frames:
            previous = self.detections.get(i - 1)
            if previous is None:
                raise DataError(f'frame {i} runs before the detections of frame {i - 1}')
            self.levels[i] = apply_prior(self.gate[i], previous.boxes, previous.scores,
                                         self.owned, self.config)
        return self.levels[i]

    def observe(self, i: int, detections: Detections) -> None:
        self.detections[i] = detections


def run_loop(model: TileDetector, data: DetectionSet, loop: PriorLoop, table: MacTable,
             halo: str = SHIP_HALO) -> dict[str, Any]:
    """run_variant's result for `loop`'s gate levels with the temporal prior in a closed loop
    over the walks of `data` (all walks advance together; tiles with `halo`); `loop` keeps
    the levels used and the detections."""
    return run_variant(model, data, SHIP_P, SHIP_K, halo, loop, table,
                       order=walk_order(len(data), loop.frames), observe=loop.observe)


def shipped_grid(model: TileDetector, k: int = SHIP_K, halo: str = SHIP_HALO) -> TileGrid:
    """The tile grid at the shipped split point for `k` and `halo`."""
    cfg = model.config
    return MicroFlowExecutor(model, SHIP_P).grid(cfg.input_width, cfg.input_height, k, halo)


def agreement(model: TileDetector, data: DetectionSet, used: dict[str, np.ndarray],
              count: int, progress: bool = True, halo: str = SHIP_HALO) -> dict[str, Any]:
    """Labels (gate/labels.py, k = SHIP_K, tiles with `halo`) of `count` frames spread over
    `data` against the levels [N, k*k] each of `used` chose there: share equal, above
    (compressed more than the label allows) and below."""
    from neulens_ros.progress import progress_bar
    frames = np.unique(np.linspace(0, len(data) - 1, count).round().astype(np.int64)) \
        if count else np.zeros(0, np.int64)
    executor = MicroFlowExecutor(model, SHIP_P)
    bar = progress_bar(frames, desc='labelling', unit='frame', disable=not progress)
    labels = np.array([label_frame(executor, normalised_images(data, [i]), SHIP_K, halo,
                                   model.config.output_stride).labels
                       for i in bar], np.int64).reshape(len(frames), SHIP_K ** 2)
    return {'frames': frames.tolist(),
            'label_histogram': np.bincount(labels.ravel(), minlength=NUM_LEVELS).tolist(),
            'variants': {name: _agree(levels[frames], labels) for name, levels in used.items()}}


def _agree(levels: np.ndarray, labels: np.ndarray) -> dict[str, float | None]:
    if not labels.size:
        return {'agreement': None, 'above_label': None, 'below_label': None}
    return {'agreement': float((levels == labels).mean()),
            'above_label': float((levels > labels).mean()),
            'below_label': float((levels < labels).mean())}


def evaluate_stream(model: TileDetector, gate: CompressionGuidingGate, data: DetectionSet,
                    frames: int, prior: PriorConfig, caution: float,
                    cautions: Sequence[float] = STREAM_CAUTIONS, label_frames: int = 0,
                    progress: bool = True, gate_labels: str = 'paper',
                    rule: OracleRule | None = None, halo: str = SHIP_HALO,
                    budget: Mapping[float, OperatingPoint] | None = None
                    ) -> tuple[dict[str, Any], dict[str, PriorLoop]]:
    """Every variant on the walks of `data` ({'variants', 'families', 'budgets',
    'agreement', 'headline'}; the gates at the shipped `caution` and `cautions`, for a gate
    that learnt `gate_labels`, with its calibrated kind `rule` if any, and at its calibrated
    `budget` points ({fraction: (caution, rule)}, none if None); tiles with the detector's
    `halo`), and the closed loops of the prior by variant name."""
    check_gate_labels(gate_labels)
    check_rule(rule, gate_labels)
    model.eval()
    cautions = sorted({caution, *cautions})
    table = MacTable(model)
    grid = shipped_grid(model, halo=halo)
    raw = {c: gate_levels(gate, data, SHIP_K, c) for c in cautions}  # the gate's own levels
    paper = {cgg_name(c): rule_levels(levels, rule) for c, levels in raw.items()}
    paper.update(budget_family(gate, data, gate_labels, budget))
    paper.update(kinds_family(raw[caution], gate_labels))
    shared: dict[bytes, PriorLoop] = {}  # one loop per distinct gate levels
    loops = {prior_name(name): shared.setdefault(
        levels.tobytes(), PriorLoop(levels, frames, owned_blocks(grid), prior))
        for name, levels in paper.items()}
    oracle = oracle_levels(data.boxes, grid)
    jobs = {**level_jobs({**paper, **oracle, **random_tiles(table, grid, len(data))}, halo),
            **untiled_width_jobs()}
    tasks: dict[str, Callable[[], dict[str, Any]]] = {
        name: partial(run_variant, model, data, *job, table) for name, job in jobs.items()}
    tasks.update({name: partial(run_loop, model, data, loop, table, halo)
                  for name, loop in loops.items()})
    keys = {**{name: job_key(job, len(data)) for name, job in jobs.items()},
            **{name: ('prior', id(loop)) for name, loop in loops.items()}}
    variants = run_once(tasks, keys, progress)
    used = {**paper, **{name: loop.levels for name, loop in loops.items()}}
    for name, levels in used.items():
        variants[name]['level_histogram'] = np.bincount(levels.ravel(),
                                                        minlength=NUM_LEVELS).tolist()
    families = {'width': list(WIDTH), 'untiled_width': list(UNTILED_WIDTH),
                'oracle': list(oracle), 'cgg': list(paper),
                'cgg_prior': list(loops)}
    shipped, with_prior = variants[cgg_name(caution)], variants[cgg_name(caution, True)]
    headline = {'walks': len(data) // frames, 'frames_per_walk': frames, 'halo': halo,
                'gate_caution': caution, 'gate_labels': gate_labels,
                'gate_kind_rule': rule_label(rule), 'gate_budget_points': budget_record(budget),
                'map50_level0': variants['uniform_0']['map50'],
                'macs_level0': variants['uniform_0']['macs'],
                'map50_cgg': shipped['map50'], 'macs_cgg': shipped['macs'],
                'map50_cgg_prior': with_prior['map50'], 'macs_cgg_prior': with_prior['macs']}
    return {'variants': variants, 'families': families,
            'budgets': stream_budgets(variants, families),
            'agreement': agreement(model, data, used, label_frames, progress, halo),
            'headline': headline}, loops


def stream_budgets(variants: dict[str, dict[str, Any]], families: dict[str, list[str]]
                   ) -> list[dict[str, Any]]:
    """eval/detector.py budgets (width, oracle, paper CGG, random tiles, the untiled width
    floor) with the CGG + prior's mAP, gain over width and over the untiled floor and
    captured share of the oracle's gain (prior_*)."""
    rows = budgets(variants, families)
    with_prior = budgets(variants, {**families, 'cgg': families['cgg_prior']})
    for row, other in zip(rows, with_prior, strict=True):
        row.update(prior_map50=other['cgg_map50'], prior_gain=other['cgg_gain'],
                   prior_captured=other['captured'],
                   prior_gain_untiled=other.get('cgg_gain_untiled'))
    return rows


def gate_cost(gate: CompressionGuidingGate, model: TileDetector, images: Sequence[np.ndarray],
              previous: Sequence[Detections], caution: float, config: PriorConfig, halo: str,
              rule: OracleRule | None = None) -> dict[str, dict[str, float]]:
    """time_gate (ms per frame, per k) of the gate on ONNX Runtime (one thread) alone and with
    the temporal prior of detections `previous` (cycled) at `caution` (and kind `rule`), moved
    into the owned blocks of tiles with the detector's `halo`."""
    if not previous:
        raise DataError('timing the prior needs detections of previous frames')
    net = gate_net(gate, 'onnxruntime')
    owned = {k: owned_blocks(shipped_grid(model, k, halo)) for k in TILE_GRIDS}
    cycle = itertools.cycle(previous)

    def with_prior(image: np.ndarray, k: int) -> np.ndarray:
        det = next(cycle)
        return apply_prior(rule_levels(run_gate(net, image, k, caution).levels, rule),
                           det.boxes, det.scores, owned[k], config)
    return time_gate({'onnxruntime': net}, images, steps={'onnxruntime_with_prior': with_prior})


def plot_stream(results: dict[str, Any], path: Path) -> Path:
    """mAP@0.5 against MACs: eval/detector.py draw_families with the CGG + prior's curve, the
    gate's calibrated point ringed and its budget points starred (alone only: with the prior
    they sit on the prior's curve)."""
    plt = pyplot()
    fig, ax = plt.subplots(figsize=(10, 4.5))
    draw_families(ax, results, cgg_label(results, 'CGG (cautions'))
    curve(ax, points(results['variants'], results['families']['cgg_prior']), 'D-',
          'CGG + temporal prior (same cautions and kinds rules)')
    variants = results['variants']
    mark_points(ax, variants, cgg_name(results['headline']['gate_caution']),
                [n for n in variants if n.startswith(BUDGET_POINT)])
    return save_plot(fig, ax, path)
