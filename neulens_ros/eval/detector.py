"""Detector evaluation, side by side in one run on the held-out generated set.

Variants (all at the shipped split point and grid, with the detector's halo, unless named
otherwise):
- untiled full-width model;
- tiled level 0 for each halo mode ('paper', 'exact', 8 px and the detector's), each P option
  and each k;
- every uniform level 0..3 (one width for the whole image = image-level dynamic width);
- the untiled model at each level's width (`untiled_width_<level>`: the front slimmed to the
  level over the whole frame, k = 1, the back at full width): the floor a user has without
  tiles, since a slimmable network runs untiled too and pays no tile seams;
- the CGG's per-tile choice at its calibrated operating point (caution, and for a gate on
  tile kinds calibrated with one its kind rule), the CGG choice raised by 1 and 2 levels, and
  the gate at the other cautions of CGG_CAUTIONS (the CGG's points around its calibrated
  cost: below 0 it compresses more than its arg-max, above 0 less; with the same rule); a
  gate on tile kinds (gate/kind_labels.py) also has its chosen kinds levelled by every rule of
  the oracle family (`cgg_kinds_<rule>`: the gate's counterpart of each oracle point, the same
  rules on predicted instead of true kinds); and the gate at the point its calibration chose
  for each budget (`cgg_budget_<percent>`: the most accurate (caution, rule) of the
  calibration's sweep within the budget on the calibration images, gate/calibration.py);
- the CGG's level histogram placed on random tiles (same MACs, no content awareness);
- image-level dynamic width at the CGG's MACs, interpolated on the uniform-level curve;
- the ground-truth oracle family (eval/oracle.py: levels from where the boxes are);
- random tiles at each budget (eval/oracle.py random_levels).
Each gets mAP@0.5 and mAP@0.5:0.95 (pycocotools' COCOeval, eval/coco_eval.py), mean MACs per
frame (front + back) and the front's MACs.
`budgets` compares image-level width, the oracle and the CGG family at 40, 55 and 70% of
tiled level 0's MACs (eval/oracle.py budget_rows) and adds random tiles and the untiled
width floor (the oracle's and the CGG's gain over it) at each budget.
"""

from __future__ import annotations

from pathlib import Path
from functools import partial
from typing import Any, Callable, Hashable, Mapping, Sequence

import numpy as np
import torch

from neulens_ros.errors import ConfigError, DataError
from neulens_ros.eval.coco_eval import coco_map
from neulens_ros.eval.oracle import (BUDGETS, ORACLE_FAMILY, OracleRule, Point, at_budget,
                                     budget_rows, oracle_levels, pareto_front, random_levels)
from neulens_ros.gate.calibration import gate_levels
from neulens_ros.gate.cgg import CompressionGuidingGate
from neulens_ros.gate.kind_labels import (GATE_LABELS, OperatingPoint, check_rule, chosen_kinds,
                                          rule_label, rule_levels)
from neulens_ros.gate.runtime import GATE_BACKENDS, gate_net, time_gate
from neulens_ros.levels import TILE_GRIDS
from neulens_ros.supernet.centernet import Detections, decode
from neulens_ros.supernet.detector import P_OPTIONS, TileDetector
from neulens_ros.supernet.executor import MicroFlowExecutor, normalise
from neulens_ros.supernet.macs import MacTable
from neulens_ros.supernet.slim import LEVEL_SKIP
from neulens_ros.supernet.tiling import TileGrid
from neulens_ros.train.data import DetectionSet
from neulens_ros.plots import pyplot, save

SHIP_P = 'layer2'
SHIP_K = 3
SHIP_HALO = 'paper'
BATCH = 16
CGG_CAUTIONS = (-1.0, -0.5, 0.0, 0.5, 0.75)  # the gate's points around its calibrated caution
WIDTH = tuple(f'uniform_{level}' for level in range(LEVEL_SKIP))
UNTILED_WIDTH = tuple(f'untiled_width_{level}' for level in range(LEVEL_SKIP))

LevelFn = Callable[[int], np.ndarray]  # image index -> levels [k*k]
Observe = Callable[[int, Detections], None]  # (image index, its detections)
Job = tuple[str | None, int, str, LevelFn | None]  # P (None = untiled), k, halo, levels


def _batches(n: int) -> list[range]:
    return [range(s, min(n, s + BATCH)) for s in range(0, n, BATCH)]


def normalised_images(data: DetectionSet, idx: Sequence[int]) -> torch.Tensor:
    """[B, 3, H, W] normalised images `idx` of `data`."""
    x = torch.from_numpy(np.ascontiguousarray(data.images[np.asarray(idx)]))
    return normalise(x.permute(0, 3, 1, 2))


def _score(data: DetectionSet, dets: list[Any], classes: int) -> dict[str, float]:
    """mAP@0.5 and mAP@0.5:0.95 by the standard evaluator (pycocotools' COCOeval)."""
    return coco_map(data.boxes, data.classes, [d.boxes for d in dets],
                    [d.scores for d in dets], [d.classes for d in dets], range(classes))


@torch.no_grad()
def run_variant(model: TileDetector, data: DetectionSet, p: str | None, k: int, halo: str,
                levels: LevelFn | None, table: MacTable,
                order: Sequence[Sequence[int]] | None = None,
                observe: Observe | None = None) -> dict[str, Any]:
    """mAP and MACs of one variant (p None = untiled full width). `order`: the batches of
    image indices in the order they run (default: consecutive batches of BATCH); `observe`
    sees each image's detections before the levels of any later batch are asked for (a
    closed loop: levels from earlier detections)."""
    cfg = model.config
    dets: dict[int, Detections] = {}
    macs, front_macs = [], []
    executor = MicroFlowExecutor(model, p) if p is not None else None
    grid = executor.grid(cfg.input_width, cfg.input_height, k, halo) if executor else None
    for idx in _batches(len(data)) if order is None else order:
        x = normalised_images(data, idx)
        if executor is None:
            out = model(x)
            macs += [table.untiled(cfg.input_height, cfg.input_width)] * len(idx)
            front_macs += [0] * len(idx)
        else:
            lv = np.stack([levels(i) for i in idx]) if levels else np.zeros((len(idx), k * k),
                                                                             np.int64)
            out = executor(x, lv, k, halo)
            for row in lv:
                front = table.frame_front(p, grid, row)
                front_macs.append(front)
                macs.append(front + table.back(p, cfg.input_height, cfg.input_width))
        for i, det in zip(idx, decode(out, cfg.output_stride, score_threshold=0.05),
                          strict=True):
            dets[int(i)] = det
            if observe:
                observe(int(i), det)
    if sorted(dets) != list(range(len(data))) or len(macs) != len(data):
        raise DataError(f'the batches must run every image of the set once, got '
                        f'{len(dets)} of {len(data)}')
    return {**_score(data, [dets[i] for i in range(len(data))], cfg.num_classes),
            'macs': float(np.mean(macs)), 'front_macs': float(np.mean(front_macs))}


def job_key(job: Job, frames: int) -> Hashable:
    """What run_variant's result for `job` on `frames` images depends on: the untiled model
    alone (None), or (P, k, halo, the levels of every image [frames, k*k]); equal keys give
    equal results (tiled level 0 is uniform level 0)."""
    p, k, halo, levels = job
    if p is None:
        return None
    rows = np.zeros((frames, k * k), np.int64) if levels is None else \
        np.stack([np.asarray(levels(i), np.int64) for i in range(frames)])
    return p, k, halo, rows.shape, rows.tobytes()


def run_once(tasks: Mapping[str, Callable[[], dict[str, Any]]], keys: Mapping[str, Hashable],
             progress: bool = True) -> dict[str, dict[str, Any]]:
    """{name: result} of every task, in the order of `tasks`, running only the first task of
    each key (`keys`: {name: key}, equal keys = equal results); the others get a copy."""
    from neulens_ros.progress import progress_bar
    first: dict[Hashable, str] = {}
    same = {name: first.setdefault(keys[name], name) for name in tasks}
    todo = [name for name in tasks if same[name] == name]
    ran = {name: tasks[name]() for name in progress_bar(todo, desc='evaluating',
                                                         unit='variant', disable=not progress)}
    return {name: dict(ran[same[name]]) for name in tasks}


def run_jobs(model: TileDetector, data: DetectionSet, jobs: Mapping[str, Job], table: MacTable,
             progress: bool = True) -> dict[str, dict[str, Any]]:
    """run_variant of every job on `data`, each distinct job once (job_key)."""
    return run_once({name: partial(run_variant, model, data, *job, table)
                     for name, job in jobs.items()},
                    {name: job_key(job, len(data)) for name, job in jobs.items()}, progress)


def _rows(levels: np.ndarray) -> LevelFn:
    """Image index -> that image's row of levels [N, k*k]."""
    return lambda i: levels[i]


def level_jobs(levels: dict[str, np.ndarray], halo: str = SHIP_HALO) -> dict[str, Job]:
    """The uniform levels (image-level width), then `levels` ({name: [N, k*k]}), at the
    shipped split and grid, with the detector's `halo`."""
    jobs: dict[str, Job] = {
        name: (SHIP_P, SHIP_K, halo, lambda i, lv=level: np.full(SHIP_K ** 2, lv))
        for level, name in enumerate(WIDTH)}
    jobs.update({name: (SHIP_P, SHIP_K, halo, _rows(lv)) for name, lv in levels.items()})
    return jobs


def untiled_width_jobs() -> dict[str, Job]:
    """The untiled model at each level's width (one tile, the exact halo: the whole frame)."""
    return {name: (SHIP_P, 1, 'exact', lambda i, lv=level: np.full(1, lv))
            for level, name in enumerate(UNTILED_WIDTH)}


def _jobs(levels: dict[str, np.ndarray], halo: str) -> dict[str, Job]:
    """Untiled, at full width and at each level's; tiled level 0 for each halo mode (the
    detector's `halo` among them), and for each P and k with `halo`; then level_jobs."""
    jobs: dict[str, Job] = {'untiled': (None, SHIP_K, halo, None), **untiled_width_jobs()}
    for mode in dict.fromkeys(('paper', 'exact', '8', halo)):
        jobs[f'tiled_l0_{mode}'] = (SHIP_P, SHIP_K, mode, None)
    for p in P_OPTIONS:
        for k in TILE_GRIDS:
            jobs[f'tiled_l0_{p}_k{k}'] = (p, k, halo, None)
    return {**jobs, **level_jobs(levels, halo)}


def kinds_name(rule_name: str) -> str:
    """The CGG family's name of the oracle rule `rule_name` on a kinds gate's choice."""
    return rule_name.replace('oracle_', 'cgg_kinds_', 1)


BUDGET_POINT = 'cgg_budget_'  # + the budget in percent of level 0's MACs


def budget_name(fraction: float) -> str:
    """The CGG family's name of the gate's point for the budget `fraction` of level 0."""
    return f'{BUDGET_POINT}{round(100 * fraction)}'


def _cgg_family(gate: CompressionGuidingGate, data: DetectionSet, caution: float,
                gate_labels: str, rule: OracleRule | None,
                budget: Mapping[float, OperatingPoint] | None = None) -> dict[str, np.ndarray]:
    """{name: levels [N, k*k]} of the CGG at its operating point (`caution`, and the kind
    `rule` of a gate on tile kinds calibrated with one), its +1 / +2 shifts, the gate at the
    other cautions, at the point its calibration chose for each budget (`budget`,
    gate/calibration.py budget_points) and, for a gate on tile kinds, every oracle rule on its
    chosen kinds."""
    raw = gate_levels(gate, data, SHIP_K, caution)
    cgg = rule_levels(raw, rule)
    family = {'cgg': cgg}
    for shift in (1, 2):
        family[f'cgg_plus{shift}'] = np.minimum(cgg + shift, LEVEL_SKIP)
    for other in [c for c in CGG_CAUTIONS if c != caution]:
        family[f'cgg_caution_{other}'] = gate_levels(gate, data, SHIP_K, other, rule)
    return {**family, **budget_family(gate, data, gate_labels, budget),
            **kinds_family(raw, gate_labels)}


def budget_family(gate: CompressionGuidingGate, data: DetectionSet, gate_labels: str,
                  budget: Mapping[float, OperatingPoint] | None) -> dict[str, np.ndarray]:
    """{budget_name(fraction): levels [N, k*k]} of the gate at the (caution, rule) its
    calibration chose for each budget (gate/calibration.py budget_points); {} for None."""
    family = {}
    for fraction, (caution, rule) in (budget or {}).items():
        check_rule(rule, gate_labels)
        family[budget_name(fraction)] = gate_levels(gate, data, SHIP_K, caution, rule)
    return family


def budget_record(budget: Mapping[float, OperatingPoint] | None) -> dict[str, dict[str, Any]]:
    """The headline's record of the budget points: {name: {'caution', 'kind_rule'}}."""
    return {budget_name(f): {'caution': c, 'kind_rule': rule_label(r)}
            for f, (c, r) in (budget or {}).items()}


def check_gate_labels(gate_labels: str) -> None:
    """ConfigError unless `gate_labels` is one of GATE_LABELS."""
    if gate_labels not in GATE_LABELS:
        raise ConfigError(f'gate labels {gate_labels!r} are not one of {GATE_LABELS}')


def kinds_family(cgg: np.ndarray, gate_labels: str) -> dict[str, np.ndarray]:
    """{`cgg_kinds_<rule>`: levels [N, k*k]}: every oracle rule on the tile kinds a gate on
    kinds chose (its levels `cgg` [N, k*k]); empty for a gate on the paper's labels."""
    check_gate_labels(gate_labels)
    if gate_labels != 'kinds':
        return {}
    kinds = chosen_kinds(cgg)
    return {kinds_name(rule.name): rule.levels(kinds) for rule in ORACLE_FAMILY}


def _random_name(fraction: float) -> str:
    return f'random_tiles_{round(100 * fraction)}'


def random_tiles(table: MacTable, grid: TileGrid, frames: int) -> dict[str, np.ndarray]:
    """{random_tiles_<percent>: levels [N, k*k]} reaching each budget on random tiles."""
    sizes = [grid.tile_input_size(t) for t in range(grid.k ** 2)]  # (w, h)
    costs = np.array([[table.front(SHIP_P, lv, h, w) for lv in range(LEVEL_SKIP + 1)]
                      for w, h in sizes], np.float64)  # [T, levels] MACs
    back = table.back(SHIP_P, grid.height, grid.width)
    level0 = costs[:, 0].sum() + back
    rng = np.random.default_rng(1)
    return {_random_name(f): np.stack(
        [random_levels(costs, f * level0 - back, rng) for _ in range(frames)])
        for f in BUDGETS}


def points(variants: dict[str, dict[str, Any]], names: list[str]) -> list[Point]:
    return [(variants[n]['macs'], variants[n]['map50']) for n in names]


def budgets(variants: dict[str, dict[str, Any]], families: dict[str, list[str]]
            ) -> list[dict[str, Any]]:
    """budget_rows of the width, oracle and CGG families, with random tiles at each budget
    and, where the families have it, the untiled width floor: its mAP@0.5 (its narrowest
    level's below that level's MACs) and the oracle's and the CGG's gain over it."""
    rows = budget_rows(*(points(variants, families[f]) for f in ('width', 'oracle', 'cgg')),
                       variants['uniform_0']['macs'])
    floor = points(variants, families['untiled_width']) if 'untiled_width' in families else []
    for row in rows:
        random = variants[_random_name(row['fraction'])]
        row.update(random_tiles_map50=random['map50'], random_tiles_macs=random['macs'])
        if floor:
            untiled = at_budget(floor, row['macs'], keep_below=True)
            row.update(untiled_width_map50=untiled,
                       oracle_gain_untiled=_gain(row['oracle_map50'], untiled),
                       cgg_gain_untiled=_gain(row['cgg_map50'], untiled))
    return rows


def _gain(value: float | None, floor: float | None) -> float | None:
    return None if value is None or floor is None else value - floor


def evaluate(model: TileDetector, gate: CompressionGuidingGate, data: DetectionSet,
             caution: float = 0.0, progress: bool = True, gate_labels: str = 'paper',
             rule: OracleRule | None = None, halo: str = SHIP_HALO,
             budget: Mapping[float, OperatingPoint] | None = None) -> dict[str, Any]:
    """All variants on `data`, for a gate that learnt `gate_labels` (GATE_LABELS) at its
    operating point (`caution`, and a calibrated kind `rule` or None) and at the points its
    calibration chose for the budgets (`budget`: {fraction: (caution, rule)}, none if None),
    the tiles run with the detector's `halo` (its metadata's, models/zoo.py detector_halo);
    returns {'variants', 'families', 'budgets', 'headline'}; variants that run the same
    levels (e.g. tiled level 0 and uniform level 0) run once (run_jobs)."""
    check_gate_labels(gate_labels)
    check_rule(rule, gate_labels)
    model.eval()
    table = MacTable(model)
    cfg = model.config
    grid = MicroFlowExecutor(model, SHIP_P).grid(cfg.input_width, cfg.input_height, SHIP_K,
                                                 halo)
    cgg_family = _cgg_family(gate, data, caution, gate_labels, rule, budget)
    cgg = cgg_family['cgg']
    rng = np.random.default_rng(0)
    oracle = oracle_levels(data.boxes, grid)
    levels = {**cgg_family,
              'cgg_histogram_random_tiles': np.stack([rng.permutation(row) for row in cgg]),
              **oracle, **random_tiles(table, grid, len(data))}
    variants = run_jobs(model, data, _jobs(levels, grid.halo), table, progress)
    width = points(variants, list(WIDTH))
    untiled_width = points(variants, list(UNTILED_WIDTH))
    level0 = variants['uniform_0']
    for name in [n for n in variants if n.startswith('cgg')]:
        v = variants[name]
        v['mac_reduction'] = 1.0 - v['macs'] / level0['macs']
        v['front_mac_reduction'] = 1.0 - v['front_macs'] / level0['front_macs']
        v['dynamic_width_map50_at_same_macs'] = at_budget(width, v['macs'], keep_below=True)
        v['untiled_width_map50_at_same_macs'] = at_budget(untiled_width, v['macs'],
                                                          keep_below=True)
    families = {'width': list(WIDTH), 'untiled_width': list(UNTILED_WIDTH),
                'oracle': list(oracle), 'cgg': list(cgg_family)}
    headline = {
        'split_point': SHIP_P, 'k': SHIP_K, 'halo': grid.halo, 'frames': len(data),
        'gate_caution': caution, 'gate_labels': gate_labels,
        'gate_kind_rule': rule_label(rule),
        'gate_budget_points': budget_record(budget),
        'map50_untiled': variants['untiled']['map50'],
        'map50_tiled_level0': level0['map50'],
        'map50_cgg': variants['cgg']['map50'],
        'cgg_mac_reduction': variants['cgg']['mac_reduction'],
        'cgg_front_mac_reduction': variants['cgg']['front_mac_reduction'],
        'map50_dynamic_width_at_cgg_macs': variants['cgg']['dynamic_width_map50_at_same_macs'],
        'map50_untiled_width_at_cgg_macs': variants['cgg']['untiled_width_map50_at_same_macs'],
        'cgg_level_histogram': np.bincount(cgg.ravel(), minlength=5).tolist(),
        'gate_ms_per_frame': time_gate(
            {name: gate_net(gate, name) for name in GATE_BACKENDS},
            [np.ascontiguousarray(image) for image in data.images[:16]]),
    }
    return {'variants': variants, 'families': families,
            'budgets': budgets(variants, families), 'headline': headline}


def curve(ax: Any, pairs: list[Point], style: str, label: str) -> None:
    """(MACs, mAP) pairs as MMACs against mAP, by increasing MACs."""
    pairs = sorted(pairs)
    ax.plot([p[0] / 1e6 for p in pairs], [p[1] for p in pairs], style, label=label)


def draw_families(ax: Any, results: dict[str, Any], label: str) -> None:
    """mAP@0.5 against MMACs per frame: image-level width (uniform levels), the untiled width
    floor where the results have it, the CGG family,
    the oracle family and its Pareto front, random tiles at each budget, the budget lines."""
    v, families = results['variants'], results['families']
    curve(ax, points(v, families['width']), 'o-', 'image-level width (uniform level)')
    if 'untiled_width' in families:
        curve(ax, points(v, families['untiled_width']), 'D--',
              'untiled width (no tiles, one level)')
    cgg = points(v, families['cgg'])
    curve(ax, cgg, 's', label)
    curve(ax, pareto_front(cgg), '-', "CGG's Pareto front")
    oracle = points(v, families['oracle'])
    curve(ax, oracle, '^', 'ground-truth oracle')
    curve(ax, pareto_front(oracle), ':', "oracle's Pareto front")
    curve(ax, [(row['random_tiles_macs'], row['random_tiles_map50'])
               for row in results['budgets']], 'v', 'random tiles at each budget')
    for row in results['budgets']:
        ax.axvline(row['macs'] / 1e6, color='grey', ls='-.', lw=0.8)
        ax.annotate(f' {row["fraction"]:.0%} of level 0', (row['macs'] / 1e6, 0.02),
                    xycoords=('data', 'axes fraction'), fontsize=7, rotation=90, va='bottom')


def save_plot(fig: Any, ax: Any, path: Path) -> Path:
    """Axis labels, grid and legend of a mAP-vs-MACs plot, saved to `path`."""
    path.parent.mkdir(parents=True, exist_ok=True)
    ax.set_xlabel('MMACs per frame')
    ax.set_ylabel('mAP@0.5')
    ax.grid(alpha=0.3)
    # beside the axes, so that it hides no point and no budget line's label
    ax.legend(fontsize=8, loc='upper left', bbox_to_anchor=(1.02, 1.0), borderaxespad=0)
    return save(fig, path, dpi=120)


def cgg_label(results: dict[str, Any], label: str) -> str:
    """The legend of the CGG's family: `label` (an open parenthesis), the oracle rules for a
    gate on tile kinds, and the closing parenthesis."""
    kinds = results['headline'].get('gate_labels') == 'kinds'
    return label + ('; oracle rules on its kinds)' if kinds else ')')


def mark_points(ax: Any, variants: Mapping[str, Mapping[str, Any]], calibrated: str,
                budget: Sequence[str], label: str = 'CGG') -> None:
    """Ring the `calibrated` variant and star the `budget` points (variant names) over the
    curves already drawn on `ax` (MMACs on x, mAP@0.5 on y); `label` names the gate."""
    for text, names, marker in ((f'{label} at its calibrated point', [calibrated], 'o'),
                                (f"{label} at its calibration's budget points", budget, '*')):
        if names:
            ax.plot([variants[n]['macs'] / 1e6 for n in names],
                    [variants[n]['map50'] for n in names], marker, ms=14, mfc='none',
                    mec='black', mew=1.3, label=text)


def plot_results(results: dict[str, Any], out: Path) -> Path:
    """draw_families, the CGG's calibrated point and budget points marked, plus its level
    histogram on random tiles and the untiled model."""
    plt = pyplot()
    v = results['variants']
    fig, ax = plt.subplots(figsize=(10, 4.5))
    draw_families(ax, results, cgg_label(results, 'CGG (+0, +1, +2 levels; cautions'))
    mark_points(ax, v, 'cgg', [n for n in v if n.startswith(BUDGET_POINT)])
    r = v['cgg_histogram_random_tiles']
    ax.plot([r['macs'] / 1e6], [r['map50']], 'x', ms=9, label='CGG histogram, random tiles')
    ax.axhline(v['untiled']['map50'], color='grey', ls='--', lw=1, label='untiled model')
    return save_plot(fig, ax, out / 'map_vs_macs.png')
