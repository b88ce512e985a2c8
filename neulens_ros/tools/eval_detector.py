"""neulens-eval detector: mAP of the shipped (or a given) detector and gate, side by side
(untiled, tiled per halo / P / k, uniform levels, CGG choice at the gate's shipped operating
point: its caution and, for a gate on tile kinds calibrated with one, its kind rule, and at
the point its calibration chose for each budget;
image-level width, the ground-truth oracle, random tiles), with MACs, and the oracle's and
the CGG's gain over image-level width at 40, 55 and 70% of tiled level 0's MACs.

The held-out scenes are of the preset the detector was trained on (its metadata), seeds from
--first-seed on (a second range, e.g. --first-seed 1500000, is reported separately). With
--data the images of a COCO or YOLO data set on disk are evaluated instead (all of them, or
the validation part neulens-train drew with --val-ratio and --seed); its classes must be the
detector's (names and ids in the checkpoint's metadata).

    neulens-eval detector --scenes 300 --out runs/eval_detector
    neulens-eval detector --scenes 60 --threads 1
    neulens-eval detector --detector neulens_detector_hard --gate neulens_cgg_hard
    neulens-eval detector --data data/coco --val-ratio 0.2 \
        --detector runs/mine/weights/neulens_detector.pt --gate runs/mine/weights/neulens_cgg.pt
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import Any

import torch

from neulens_ros.errors import NeulensError
from neulens_ros.eval.detector import evaluate, plot_results
from neulens_ros.gate.calibration import shipped_points
from neulens_ros.models.zoo import (DETECTOR, GATE, checkpoint_labels, detector_halo,
                                    load_detector, load_gate)
from neulens_ros.tools.data_args import add_data_arguments, data_description, data_parts
from neulens_ros.train.data import (DetectionSet, dataset_set, load_set,
                                    to_checkpoint_classes)
from neulens_ros.train.plan import VAL_SEED, detector_held_out_set

COLUMNS = ('budget', 'MMACs', 'width', 'untiled', 'oracle', 'CGG', 'random', 'oracle gain',
           'CGG gain', 'captured', 'oracle-unt.', 'CGG-unt.')


def _number(value: float | None, points: bool = False) -> str:
    if value is None:
        return '-'
    return f'{100 * value:+.1f}' if points else f'{value:.3f}'


def _budget_cells(row: dict[str, Any]) -> list[str]:
    return [f'{row["fraction"]:.0%}', f'{row["macs"] / 1e6:.1f}',
            _number(row['width_map50']) + ('*' if row['width_below_narrowest'] else ''),
            _number(row.get('untiled_width_map50')),
            _number(row['oracle_map50']), _number(row['cgg_map50']),
            _number(row['random_tiles_map50']), _number(row['oracle_gain'], points=True),
            _number(row['cgg_gain'], points=True),
            '-' if row['captured'] is None else f'{row["captured"]:.0%}',
            _number(row.get('oracle_gain_untiled'), points=True),
            _number(row.get('cgg_gain_untiled'), points=True)]


def print_budgets(rows: list[dict[str, Any]]) -> None:
    """The budgets section as a table: mAP@0.5 per family, gains in points."""
    for cells in [COLUMNS, *map(_budget_cells, rows)]:
        print(' '.join(f'{c:>11s}' for c in cells))
    if any(row['width_below_narrowest'] for row in rows):
        print("* below the narrowest level's MACs: that level's mAP (the gains are lower "
              'bounds)')
    print("untiled: the untiled model slimmed to one width (no tiles); '-unt.': gain over it")


def held_out_data(args: argparse.Namespace, meta: dict[str, Any], size: tuple[int, int]
                  ) -> tuple[DetectionSet, dict[str, Any]]:
    """(the images to evaluate at the detector's input `size`, what they are): --data in the
    detector's classes, or held-out scenes of its preset."""
    if args.data is not None:
        _, part = data_parts(args, 'neulens-eval detector', args.out)
        labels = checkpoint_labels(meta)
        part = to_checkpoint_classes(part, labels.names, labels.ids)
        print(f'neulens-eval detector: {args.detector} on {len(part)} images of {args.data}',
              flush=True)
        return dataset_set(part, size), data_description(None, part, args)
    spec = detector_held_out_set(meta, args.scenes, args.first_seed)
    print(f'neulens-eval detector: {args.detector} on held-out scenes of its {spec.preset} '
          f'preset, seeds {spec.first_seed}..{spec.first_seed + spec.count - 1}', flush=True)
    return load_set(spec, args.out / 'cache'), {
        'preset': spec.preset, 'first_seed': spec.first_seed, 'scenes': spec.count}


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
    add_data_arguments(parser, training=False)
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
    try:
        data, held_out = held_out_data(args, meta, (model.config.input_width,
                                                    model.config.input_height))
    except NeulensError as exc:
        print(f'neulens-eval detector: {exc}', file=sys.stderr)
        return 2
    halo = detector_halo(meta)
    try:
        points = shipped_points(gate_meta, halo)
    except NeulensError as exc:
        print(f'neulens-eval detector: gate {args.gate}: {exc}', file=sys.stderr)
        return 2
    if points.warning:
        print(f'neulens-eval detector: warning: gate {args.gate}: {points.warning}',
              file=sys.stderr)
    (caution, rule), budget = points.point, points.budget
    results = evaluate(model, gate, data, caution, gate_labels=points.labels, rule=rule,
                       halo=halo, budget=budget)
    results['held_out'] = {**held_out, 'detector': str(args.detector), 'gate': str(args.gate)}
    args.out.mkdir(parents=True, exist_ok=True)
    (args.out / 'eval.json').write_text(json.dumps(results, indent=1))
    png = plot_results(results, args.out)
    print(json.dumps(results['headline'], indent=1))
    print_budgets(results['budgets'])
    print(f'json: {args.out / "eval.json"}\nplot: {png}')
    return 0


if __name__ == '__main__':
    raise SystemExit(main())
