"""neulens-eval difficulty: how hard a scene preset is, measured before any gate result.

    neulens-eval difficulty --preset hard --frames 300 --out runs/difficulty
    neulens-eval difficulty --preset hard --detector neulens_detector_hard

Prints every data property (classes, colour-only accuracy, distractors, clutter, distances,
small objects, coverage, empty tiles) on held-out frames and, with --detector, the uniform
level 0 and narrowest-level mAP@0.5 of that detector on the same frames, each against its
requirement; writes them to OUT/difficulty.json. Exit code 1 when a requirement is missed.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import Any


from neulens_ros.data.difficulty import DATA_TARGETS, DETECTOR_TARGETS, check, data_properties
from neulens_ros.data.scene_types import PRESETS, SceneConfig
from neulens_ros.errors import NeulensError
from neulens_ros.train.plan import FULL, VAL_SEED, held_out_set

NARROWEST = 3  # the narrowest computed level (level 4 skips the tile)


def detector_properties(name: str, preset: str, frames: int, cache: Path) -> dict[str, Any]:
    """Uniform level 0 and narrowest-level mAP@0.5 of detector `name` on held-out frames."""
    from neulens_ros.eval.detector import WIDTH, level_jobs, run_variant
    from neulens_ros.models.zoo import checkpoint_preset, load_detector
    from neulens_ros.supernet.macs import MacTable
    from neulens_ros.train.data import load_set
    model, meta = load_detector(name)
    trained_on = checkpoint_preset(meta)
    if trained_on != preset:
        raise NeulensError(f'detector {name} was trained on the {trained_on!r} preset, not '
                           f'{preset!r}: pass --preset {trained_on} or a {preset} detector')
    size = (model.config.input_width, model.config.input_height)
    data = load_set(held_out_set(frames, size, preset), cache)
    table, jobs = MacTable(model), level_jobs({})
    maps = {level: run_variant(model, data, *jobs[WIDTH[level]], table)['map50']
            for level in (0, NARROWEST)}
    return {'detector': str(name), 'map50_level0': maps[0],
            f'map50_level{NARROWEST}': maps[NARROWEST],
            'level3_loss_points': 100.0 * (maps[0] - maps[NARROWEST])}


def print_rows(rows: list[dict[str, Any]]) -> None:
    for row in rows:
        mark = 'met' if row['met'] else 'MISSED'
        print(f'  {row["key"]:34s} {row["value"]:9.3f}  {mark:6s}  {row["requirement"]}')


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog='neulens-eval difficulty', description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument('--preset', choices=PRESETS, default='hard')
    parser.add_argument('--frames', type=int, default=300, help='held-out frames to measure')
    parser.add_argument('--detector', default='',
                        help='also measure this detector checkpoint (name or .pt)')
    parser.add_argument('--out', type=Path, default=Path('runs/difficulty'))
    args = parser.parse_args(argv)
    if args.frames < 2:
        parser.error('--frames must be at least 2')
    width, height = FULL.val_render
    config = SceneConfig(width=width, height=height, preset=args.preset)
    values: dict[str, Any] = data_properties(
        config, range(VAL_SEED, VAL_SEED + args.frames))
    rows = check(values, DATA_TARGETS)
    if args.detector:
        try:
            values.update(detector_properties(args.detector, args.preset, args.frames,
                                              args.out / 'cache'))
        except NeulensError as exc:
            print(f'neulens-eval difficulty: {exc}', file=sys.stderr)
            return 2
        rows += check(values, DETECTOR_TARGETS)
    args.out.mkdir(parents=True, exist_ok=True)
    path = args.out / 'difficulty.json'
    path.write_text(json.dumps({'values': values, 'requirements': rows}, indent=1))
    print(f'{args.preset} preset, {args.frames} held-out frames at {width}x{height}:')
    print_rows(rows)
    if not args.detector:
        print('  (detector requirements: pass --detector to measure them)')
    print(f'json: {path}')
    return 0 if all(row['met'] for row in rows) else 1


if __name__ == '__main__':
    raise SystemExit(main())
