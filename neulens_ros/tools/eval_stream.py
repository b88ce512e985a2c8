"""neulens-eval stream: the detector and the gate on held-out walks, frame by frame: image-level
width, the CGG at its shipped operating point (caution, and the kind rule of a gate on tile
kinds calibrated with one) and at a few more cautions, for a gate on tile kinds every oracle
rule on the kinds it chose, the gate at the point its calibration chose for each MAC budget,
the CGG + temporal prior in a closed loop (each variant's own
detections of the previous frame) at the same cautions and rules, the ground-truth oracle
and random tiles; mAP@0.5, MACs per frame, the budgets at 40, 55 and 70%
of level 0's MACs, the gates' agreement with their labels, and the gate's cost per frame with
and without the prior (ONNX Runtime, one thread). Each seed range is reported on its own.

    neulens-eval stream --walks 10 --frames 60 --out runs/eval_stream
    neulens-eval stream --detector d.pt --gate g.pt --walks 2 --frames 8 --second-walks 0
"""

from __future__ import annotations

import argparse
import json
import sys
from dataclasses import asdict
from pathlib import Path
from typing import Any

import numpy as np
import torch

from neulens_ros.errors import ConfigError
from neulens_ros.eval.stream import (STREAM_CAUTIONS, cgg_name, evaluate_stream, gate_cost,
                                     plot_stream)
from neulens_ros.gate.calibration import shipped_points
from neulens_ros.gate.prior import PriorConfig
from neulens_ros.models.zoo import (CHECKPOINTS, checkpoint_preset, detector_halo,
                                    load_detector, load_gate)
from neulens_ros.tools.gen_dataset import parse_size
from neulens_ros.train.data import load_set
from neulens_ros.train.plan import FULL, VAL_SEED, WALK_SEEDS, held_out_walks

TIMING_FRAMES = 16
BUDGET_COLUMNS = ('budget', 'MMACs', 'width', 'untiled', 'oracle', 'CGG', 'CGG+prior',
                  'random', 'CGG gain', 'prior gain', 'CGG capt.', 'prior capt.',
                  'prior-unt.')


def _cell(value: float | None, form: str = '{:.3f}') -> str:
    return '-' if value is None else form.format(value)


def _points(gain: float | None) -> float | None:
    """A gain in mAP as points (None stays None)."""
    return None if gain is None else 100 * gain


def _table(rows: list[list[str]], first: int, width: int) -> None:
    """Right-aligned columns, the first `first` characters wide, the others `width`."""
    for name, *cells in rows:
        print(f'{name:>{first}s} ' + ' '.join(f'{c:>{width}s}' for c in cells))


def print_range(results: dict[str, Any]) -> None:
    """Variants (MMACs, mAP@0.5, agreement with the labels) and budgets of one seed range."""
    v, agreement = results['variants'], results['agreement']['variants']
    rows = [['variant', 'MMACs', 'mAP@0.5', 'agreement', 'above']]
    for name, variant in v.items():
        agree = agreement.get(name, {})
        rows.append([name, f'{variant["macs"] / 1e6:.1f}', _cell(variant['map50']),
                     _cell(agree.get('agreement'), '{:.1%}'),
                     _cell(agree.get('above_label'), '{:.1%}')])
    _table(rows, 28, 9)
    points = '{:+.1f}'
    budgets = [[f'{r["fraction"]:.0%}', f'{r["macs"] / 1e6:.1f}', _cell(r['width_map50']),
                _cell(r.get('untiled_width_map50')),
                _cell(r['oracle_map50']), _cell(r['cgg_map50']), _cell(r['prior_map50']),
                _cell(r['random_tiles_map50']), _cell(_points(r['cgg_gain']), points),
                _cell(_points(r['prior_gain']), points),
                _cell(r['captured'], '{:.0%}'), _cell(r['prior_captured'], '{:.0%}'),
                _cell(_points(r.get('prior_gain_untiled')), points)]
               for r in results['budgets']]
    _table([list(BUDGET_COLUMNS), *budgets], 6, 11)


def _prior(args: argparse.Namespace) -> PriorConfig:
    return PriorConfig(margin_px=args.margin, score_threshold=args.score_threshold,
                       centre_level=args.centre_level, touched_level=args.touched_level)


def _parser() -> argparse.ArgumentParser:
    detector, gate, _ = CHECKPOINTS['hard']
    defaults = PriorConfig()
    parser = argparse.ArgumentParser(prog='neulens-eval stream', description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument('--detector', default=detector, help='checkpoint name or .pt path')
    parser.add_argument('--gate', default=gate, help='checkpoint name or .pt path')
    parser.add_argument('--walks', type=int, default=10, help='walks per seed range')
    parser.add_argument('--frames', type=int, default=60, help='frames per walk (10 fps)')
    parser.add_argument('--first-seed', type=int, default=WALK_SEEDS[0],
                        help=f'first seed of the held-out walks (at least {VAL_SEED})')
    parser.add_argument('--second-seed', type=int, default=WALK_SEEDS[1],
                        help='first seed of the second held-out range, reported separately')
    parser.add_argument('--second-walks', type=int, default=None,
                        help='walks of the second range (default: --walks; 0: none)')
    parser.add_argument('--render', type=parse_size, default=FULL.val_render,
                        help='render size WIDTHxHEIGHT before the resize to the input')
    parser.add_argument('--cautions', default=','.join(f'{c:g}' for c in STREAM_CAUTIONS),
                        help="gate cautions beside the gate's shipped one")
    parser.add_argument('--margin', type=float, default=defaults.margin_px,
                        help='motion margin of the prior, input pixels')
    parser.add_argument('--score-threshold', type=float, default=defaults.score_threshold)
    parser.add_argument('--centre-level', type=int, default=defaults.centre_level)
    parser.add_argument('--touched-level', type=int, default=defaults.touched_level)
    parser.add_argument('--label-frames', type=int, default=40,
                        help='frames per range labelled for the agreement (0: none)')
    parser.add_argument('--out', type=Path, default=Path('runs/eval_stream'))
    parser.add_argument('--threads', type=int, default=1, help='torch threads')
    parser.add_argument('--quiet', action='store_true', help='no progress bars')
    return parser


def _load(args: argparse.Namespace, parser: argparse.ArgumentParser) -> tuple[Any, ...]:
    """(detector, gate, the gate's shipped caution, its labels, its kind rule or None, the
    detector's halo, the gate's budget points); the detector must be of the hard preset."""
    model, meta = load_detector(args.detector)
    if checkpoint_preset(meta) != 'hard':
        parser.error(f'walks are hard-preset rooms; {args.detector} was trained on the '
                     f'{checkpoint_preset(meta)!r} preset')
    gate, gate_meta = load_gate(args.gate)
    halo = detector_halo(meta)
    try:
        points = shipped_points(gate_meta, halo)
    except ConfigError as exc:
        parser.error(f'gate {args.gate}: {exc}')
    if points.warning:
        print(f'neulens-eval stream: warning: gate {args.gate}: {points.warning}',
              file=sys.stderr)
    (caution, rule), budget = points.point, points.budget
    return model, gate, caution, points.labels, rule, halo, budget


def main(argv: list[str] | None = None) -> int:
    parser = _parser()
    args = parser.parse_args(argv)
    second = args.walks if args.second_walks is None else args.second_walks
    if args.walks < 1 or args.frames < 2 or second < 0 or args.label_frames < 0:
        parser.error('--walks must be >= 1, --frames >= 2, --second-walks and --label-frames '
                     '>= 0')
    if min(args.first_seed, args.second_seed) < VAL_SEED:
        parser.error(f'--first-seed and --second-seed must be at least {VAL_SEED} (lower seeds '
                     'are training and calibration walks and scenes)')
    try:
        prior, render = _prior(args), args.render
        cautions = [float(c) for c in args.cautions.split(',') if c]
    except (ConfigError, ValueError) as exc:
        parser.error(str(exc))
    torch.set_num_threads(args.threads)
    model, gate, caution, gate_labels, rule, halo, budget = _load(args, parser)
    size = (model.config.input_width, model.config.input_height)
    report: dict[str, Any] = {'prior': asdict(prior), 'gate_caution': caution, 'ranges': {}}
    args.out.mkdir(parents=True, exist_ok=True)
    for seed, walks in [(s, n) for s, n in ((args.first_seed, args.walks),
                                            (args.second_seed, second)) if n]:
        data = load_set(held_out_walks(walks, args.frames, size, seed, render),
                        args.out / 'cache', not args.quiet)
        results, loops = evaluate_stream(model, gate, data, args.frames, prior, caution,
                                         cautions, args.label_frames, not args.quiet,
                                         gate_labels, rule, halo, budget)
        results['plot'] = str(plot_stream(results, args.out / f'map_vs_macs_{seed}.png'))
        report['ranges'][str(seed)] = results
        print(f'walks from seed {seed}: {walks} x {args.frames} frames')
        print_range(results)
        if 'gate_ms_per_frame' not in report:  # timed once, on the first range's frames
            report['gate_ms_per_frame'] = gate_cost(
                gate, model, [np.ascontiguousarray(im) for im in data.images[:TIMING_FRAMES]],
                list(loops[cgg_name(caution, True)].detections.values()), caution, prior,
                halo, rule)
    print('gate ms per frame (ONNX Runtime, one thread; alone / with the prior): ' + ', '.join(
        f'{k} {t["onnxruntime"]:.3f} / {t["onnxruntime_with_prior"]:.3f}'
        for k, t in report['gate_ms_per_frame'].items()))
    path = args.out / 'eval_stream.json'
    path.write_text(json.dumps(report, indent=1))
    print(f'json: {path}\nshipped caution: {cgg_name(caution)} / {cgg_name(caution, True)}')
    return 0


if __name__ == '__main__':
    raise SystemExit(main())
