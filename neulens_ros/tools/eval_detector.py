"""neulens-eval detector: mAP of the shipped (or a given) detector and gate, side by side
(untiled, tiled per halo / P / k, uniform levels, CGG choice at the gate's shipped caution,
image-level width, the ground-truth oracle, random tiles), with MACs, and the oracle's and
the CGG's gain over image-level width at 40, 55 and 70% of tiled level 0's MACs.

The held-out scenes are of the preset the detector was trained on (its metadata), seeds from
--first-seed on (a second range, e.g. --first-seed 1500000, is reported separately).

    neulens-eval detector --scenes 300 --out runs/eval_detector
    neulens-eval detector --scenes 60 --threads 1
    neulens-eval detector --detector neulens_detector_hard --gate neulens_cgg_hard
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path
from typing import Any

import torch

from neulens_ros.eval.detector import evaluate, plot_results
from neulens_ros.models.zoo import DETECTOR, GATE, load_detector, load_gate
from neulens_ros.train.data import load_set
from neulens_ros.train.plan import VAL_SEED, detector_held_out_set

COLUMNS = ('budget', 'MMACs', 'width', 'oracle', 'CGG', 'random', 'oracle gain', 'CGG gain',
           'captured')


def _number(value: float | None, points: bool = False) -> str:
    if value is None:
        return '-'
    return f'{100 * value:+.1f}' if points else f'{value:.3f}'


def _budget_cells(row: dict[str, Any]) -> list[str]:
    return [f'{row["fraction"]:.0%}', f'{row["macs"] / 1e6:.1f}',
            _number(row['width_map50']) + ('*' if row['width_below_narrowest'] else ''),
            _number(row['oracle_map50']), _number(row['cgg_map50']),
            _number(row['random_tiles_map50']), _number(row['oracle_gain'], points=True),
            _number(row['cgg_gain'], points=True),
            '-' if row['captured'] is None else f'{row["captured"]:.0%}']


def print_budgets(rows: list[dict[str, Any]]) -> None:
    """The budgets section as a table: mAP@0.5 per family, gains in points."""
    for cells in [COLUMNS, *map(_budget_cells, rows)]:
        print(' '.join(f'{c:>11s}' for c in cells))
    if any(row['width_below_narrowest'] for row in rows):
        print("* below the narrowest level's MACs: that level's mAP (the gains are lower "
              'bounds)')


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog='neulens-eval detector', description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument('--detector', default=DETECTOR)
    parser.add_argument('--gate', default=GATE)
    parser.add_argument('--scenes', type=int, default=300)
    parser.add_argument('--first-seed', type=int, default=VAL_SEED,
                        help=f'seed of the first held-out scene (at least {VAL_SEED}: lower '
                             'seeds are training scenes)')
    parser.add_argument('--out', type=Path, default=Path('runs/eval_detector'))
    parser.add_argument('--threads', type=int, default=0, help='torch threads (0 = default)')
    args = parser.parse_args(argv)
    if args.scenes < 1:
        parser.error('--scenes must be at least 1')
    if args.first_seed < VAL_SEED:
        parser.error(f'--first-seed must be at least {VAL_SEED} (lower seeds are training '
                     'scenes)')
    if args.threads:
        torch.set_num_threads(args.threads)
    model, meta = load_detector(args.detector)
    gate, gate_meta = load_gate(args.gate)
    spec = detector_held_out_set(meta, args.scenes, args.first_seed)
    print(f'neulens-eval detector: {args.detector} on held-out scenes of its {spec.preset} '
          f'preset, seeds {spec.first_seed}..{spec.first_seed + spec.count - 1}', flush=True)
    data = load_set(spec, args.out / 'cache')
    results = evaluate(model, gate, data, float(gate_meta.get('caution', 0.0)))
    results['held_out'] = {'preset': spec.preset, 'first_seed': spec.first_seed,
                           'scenes': spec.count, 'detector': str(args.detector),
                           'gate': str(args.gate)}
    args.out.mkdir(parents=True, exist_ok=True)
    (args.out / 'eval.json').write_text(json.dumps(results, indent=1))
    png = plot_results(results, args.out)
    print(json.dumps(results['headline'], indent=1))
    print_budgets(results['budgets'])
    print(f'json: {args.out / "eval.json"}\nplot: {png}')
    return 0


if __name__ == '__main__':
    raise SystemExit(main())
