"""neulens-eval difficulty: how hard a scene preset is, measured before any gate result.

    neulens-eval difficulty --preset hard --frames 300 --out runs/difficulty
    neulens-eval difficulty --preset hard --detector neulens_detector_hard

Prints every data property (classes, colour-only accuracy, distractors, clutter, distances,
small objects, coverage, empty tiles) on held-out frames and, with --detector, the uniform
level 0 and narrowest-level mAP@0.5 of that detector on the same frames, each against its
requirement, and both by object size (box side at 640 x 480: under 32, 32-64, 64-128 and
128 px or more); writes them to OUT/difficulty.json. Exit code 1 when a requirement is missed.
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
SIZE_SIDES = (32, 64, 128)  # box sides (sqrt of the area) at 640 x 480 between size ranges


def size_ranges(sides: tuple[int, ...] = SIZE_SIDES) -> list[str]:
    """Names of the side ranges SIZE_SIDES draws: '<32', '32-64', ..., '>=128'."""
    return [f'<{sides[0]}', *(f'{a}-{b}' for a, b in zip(sides[:-1], sides[1:], strict=True)),
            f'>={sides[-1]}']


def _none_for_nan(values: list[float]) -> list[float | None]:
    """None (JSON null) where a size range had no object (NaN is not JSON)."""
    return [None if v != v else v for v in values]


def detector_properties(name: str, preset: str, frames: int, cache: Path) -> dict[str, Any]:
    """Uniform level 0 and narrowest-level mAP@0.5 of detector `name` on held-out frames, and
    both by object size (box side at 640 x 480: where the narrow width loses)."""
    from neulens_ros.eval.coco_eval import map50_by_size
    from neulens_ros.eval.detector import WIDTH, level_jobs, run_variant
    from neulens_ros.models.zoo import checkpoint_preset, detector_halo, load_detector
    from neulens_ros.supernet.macs import MacTable
    from neulens_ros.train.data import load_set
    model, meta = load_detector(name)
    trained_on = checkpoint_preset(meta)
    if trained_on != preset:
        raise NeulensError(f'detector {name} was trained on the {trained_on!r} preset, not '
                           f'{preset!r}: pass --preset {trained_on} or a {preset} detector')
    size = (model.config.input_width, model.config.input_height)
    data = load_set(held_out_set(frames, size, preset), cache)
    table, jobs = MacTable(model), level_jobs({}, detector_halo(meta))
    scale = size[0] / FULL.val_render[0]  # input pixels per 640 x 480 pixel
    maps, by_size = {}, {}
    for level in (0, NARROWEST):
        dets: dict[int, Any] = {}
        maps[level] = run_variant(model, data, *jobs[WIDTH[level]], table,
                                  observe=dets.__setitem__)['map50']
        found = [dets[i] for i in range(len(data))]
        by_size[level] = dict(zip(size_ranges(), _none_for_nan(map50_by_size(
            data.boxes, data.classes, [d.boxes for d in found], [d.scores for d in found],
            [d.classes for d in found], range(model.config.num_classes),
            [side * scale for side in SIZE_SIDES])), strict=True))
    return {'detector': str(name), 'map50_level0': maps[0],
            f'map50_level{NARROWEST}': maps[NARROWEST],
            'level3_loss_points': 100.0 * (maps[0] - maps[NARROWEST]),
            'map50_by_object_side_px': {f'level{lv}': by_size[lv] for lv in by_size}}


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
    for level, maps in values.get('map50_by_object_side_px', {}).items():
        print(f'  {level} mAP@0.5 by object side at 640x480: '
              + ', '.join(f'{side} px ' + ('-' if value is None else f'{value:.3f}')
                          for side, value in maps.items()))
    if not args.detector:
        print('  (detector requirements: pass --detector to measure them)')
    print(f'json: {path}')
    return 0 if all(row['met'] for row in rows) else 1


if __name__ == '__main__':
    raise SystemExit(main())
