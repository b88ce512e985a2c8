"""Detector evaluation, side by side in one run on the held-out generated set.

Variants (all at the shipped split point and grid unless named otherwise):
- untiled full-width model;
- tiled level 0 for each halo mode ('paper', 'exact', 8 px), each P option and each k;
- every uniform level 0..3 (one width for the whole image = image-level dynamic width);
- the CGG's per-tile choice, and the CGG choice raised by 1 and 2 levels;
- the CGG's level histogram placed on random tiles (same MACs, no content awareness);
- image-level dynamic width at the CGG's MACs, interpolated on the uniform-level curve.
Each gets mAP@0.5, mAP@0.5:0.95, mean MACs per frame (front + back) and the front's MACs.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, Callable

import numpy as np
import torch

from neulens_ros.eval.map import COCO_THRESHOLDS, mean_ap
from neulens_ros.gate.calibration import gate_levels
from neulens_ros.gate.cgg import CompressionGuidingGate
from neulens_ros.gate.runtime import GATE_BACKENDS, gate_net, time_gate
from neulens_ros.levels import TILE_GRIDS
from neulens_ros.supernet.centernet import decode
from neulens_ros.supernet.detector import P_OPTIONS, TileDetector
from neulens_ros.supernet.executor import MicroFlowExecutor, normalise
from neulens_ros.supernet.macs import MacTable
from neulens_ros.supernet.slim import LEVEL_SKIP
from neulens_ros.train.data import DetectionSet
from neulens_ros.plots import pyplot, save

SHIP_P = 'layer2'
SHIP_K = 3
SHIP_HALO = 'paper'
BATCH = 16

LevelFn = Callable[[int], np.ndarray]  # image index -> levels [k*k]


def _batches(n: int) -> list[range]:
    return [range(s, min(n, s + BATCH)) for s in range(0, n, BATCH)]


def _images(data: DetectionSet, idx: range) -> torch.Tensor:
    x = torch.from_numpy(np.ascontiguousarray(data.images[idx.start:idx.stop]))
    return normalise(x.permute(0, 3, 1, 2))


def _score(data: DetectionSet, dets: list[Any], classes: int) -> dict[str, float]:
    args = ([d.boxes for d in dets], [d.scores for d in dets], [d.classes for d in dets],
            data.boxes, data.classes, classes)
    return {'map50': mean_ap(*args, thresholds=(0.5,)),
            'map50_95': mean_ap(*args, thresholds=COCO_THRESHOLDS)}


@torch.no_grad()
def run_variant(model: TileDetector, data: DetectionSet, p: str | None, k: int, halo: str,
                levels: LevelFn | None, table: MacTable) -> dict[str, Any]:
    """mAP and MACs of one variant (p None = untiled full width)."""
    cfg = model.config
    stride = cfg.output_stride
    dets, macs, front_macs = [], [], []
    executor = MicroFlowExecutor(model, p) if p is not None else None
    grid = executor.grid(cfg.input_width, cfg.input_height, k, halo) if executor else None
    for idx in _batches(len(data)):
        x = _images(data, idx)
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
        dets += decode(out, stride, score_threshold=0.05)
    return {**_score(data, dets, cfg.num_classes), 'macs': float(np.mean(macs)),
            'front_macs': float(np.mean(front_macs))}


def interpolate(curve: list[dict[str, Any]], macs: float, key: str) -> float:
    """`key` of the uniform-level curve linearly interpolated at `macs`."""
    points = sorted(curve, key=lambda r: r['macs'])
    xs = [r['macs'] for r in points]
    return float(np.interp(macs, xs, [r[key] for r in points]))


def evaluate(model: TileDetector, gate: CompressionGuidingGate, data: DetectionSet,
             caution: float = 0.0, progress: bool = True) -> dict[str, Any]:
    """All variants on `data`; returns {'variants': {...}, 'headline': {...}}."""
    from tqdm import tqdm
    model.eval()
    table = MacTable(model)
    cgg = gate_levels(gate, data, SHIP_K, caution)
    rng = np.random.default_rng(0)
    shuffled = np.stack([rng.permutation(row) for row in cgg])
    jobs: dict[str, tuple] = {'untiled': (None, SHIP_K, SHIP_HALO, None)}
    for halo in ('paper', 'exact', '8'):
        jobs[f'tiled_l0_{halo}'] = (SHIP_P, SHIP_K, halo, None)
    for p in P_OPTIONS:
        for k in TILE_GRIDS:
            jobs.setdefault(f'tiled_l0_{p}_k{k}', (p, k, SHIP_HALO, None))
    for level in range(LEVEL_SKIP):
        jobs[f'uniform_{level}'] = (SHIP_P, SHIP_K, SHIP_HALO,
                                    lambda i, lv=level: np.full(SHIP_K ** 2, lv))
    jobs['cgg'] = (SHIP_P, SHIP_K, SHIP_HALO, lambda i: cgg[i])
    for shift in (1, 2):
        jobs[f'cgg_plus{shift}'] = (SHIP_P, SHIP_K, SHIP_HALO,
                                    lambda i, s=shift: np.minimum(cgg[i] + s, LEVEL_SKIP))
    jobs['cgg_histogram_random_tiles'] = (SHIP_P, SHIP_K, SHIP_HALO, lambda i: shuffled[i])
    variants = {}
    for name, job in tqdm(jobs.items(), desc='evaluating', unit='variant',
                          disable=not progress):
        variants[name] = run_variant(model, data, *job, table)
    uniform = [variants[f'uniform_{lv}'] for lv in range(LEVEL_SKIP)]
    level0 = variants['uniform_0']
    for name in [n for n in variants if n.startswith('cgg')]:
        v = variants[name]
        v['mac_reduction'] = 1.0 - v['macs'] / level0['macs']
        v['front_mac_reduction'] = 1.0 - v['front_macs'] / level0['front_macs']
        v['dynamic_width_map50_at_same_macs'] = interpolate(uniform, v['macs'], 'map50')
    headline = {
        'split_point': SHIP_P, 'k': SHIP_K, 'halo': SHIP_HALO, 'frames': len(data),
        'gate_caution': caution,
        'map50_untiled': variants['untiled']['map50'],
        'map50_tiled_level0': level0['map50'],
        'map50_cgg': variants['cgg']['map50'],
        'cgg_mac_reduction': variants['cgg']['mac_reduction'],
        'cgg_front_mac_reduction': variants['cgg']['front_mac_reduction'],
        'map50_dynamic_width_at_cgg_macs': variants['cgg']['dynamic_width_map50_at_same_macs'],
        'cgg_level_histogram': np.bincount(cgg.ravel(), minlength=5).tolist(),
        'gate_ms_per_frame': time_gate(
            {name: gate_net(gate, name) for name in GATE_BACKENDS},
            [np.ascontiguousarray(image) for image in data.images[:16]]),
    }
    return {'variants': variants, 'headline': headline}


def plot_results(results: dict[str, Any], out: Path) -> Path:
    """mAP@0.5 against MACs per frame for the uniform levels, the CGG and its shifts."""
    plt = pyplot()
    out.mkdir(parents=True, exist_ok=True)
    v = results['variants']
    fig, ax = plt.subplots(figsize=(6, 4))
    uniform = [v[f'uniform_{lv}'] for lv in range(LEVEL_SKIP)]
    ax.plot([u['macs'] / 1e6 for u in uniform], [u['map50'] for u in uniform], 'o-',
            label='image-level width (uniform level)')
    cgg = [v['cgg'], v['cgg_plus1'], v['cgg_plus2']]
    ax.plot([c['macs'] / 1e6 for c in cgg], [c['map50'] for c in cgg], 's-',
            label='CGG choice (+0, +1, +2 levels)')
    r = v['cgg_histogram_random_tiles']
    ax.plot([r['macs'] / 1e6], [r['map50']], 'x', ms=9, label='CGG histogram, random tiles')
    ax.axhline(v['untiled']['map50'], color='grey', ls='--', lw=1, label='untiled model')
    ax.set_xlabel('MMACs per frame')
    ax.set_ylabel('mAP@0.5')
    ax.grid(alpha=0.3)
    ax.legend(fontsize=8)
    return save(fig, out / 'map_vs_macs.png', dpi=120)
