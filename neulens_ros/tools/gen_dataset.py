"""neulens-gen-data: render a data set of generated RGB-D scenes with ground truth.

    neulens-gen-data --out data/val --num 200 --seed 100000 --size 640x480 --density mixed
    neulens-gen-data --out data/hard --num 50 --preset hard
    neulens-gen-data --out data/coco --num 200 --format coco --preset easy \
        --classes 0:crate,2:ball,3:cone
    neulens-gen-data --out data/yolo --num 200 --format yolo

--format scenes (the default) writes the scene folder layout (data/dataset.py); coco and yolo
write detection data sets (data/coco.py, data/yolo.py) that neulens-train --data reads.
--classes SRC:NAME[:ID],... keeps only the objects of the listed generator classes (index or
name) under new names, in that order, with COCO ids ID (default: the generator's class id).
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path

from neulens_ros.data.annotated import FORMATS
from neulens_ros.data.dataset import write_dataset
from neulens_ros.data.formats import parse_classes, write_generated
from neulens_ros.data.scenes import DENSITIES, PRESETS, SceneConfig
from neulens_ros.errors import NeulensError
from neulens_ros.models.names import DEFAULT_PRESET


def parse_size(text: str) -> tuple[int, int]:
    try:
        width, height = (int(v) for v in text.lower().split('x'))
    except ValueError:
        raise argparse.ArgumentTypeError(f'size must be WIDTHxHEIGHT, got {text!r}') from None
    return width, height


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog='neulens-gen-data', description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument('--out', type=Path, required=True, help='data set folder')
    parser.add_argument('--num', type=int, default=100, help='number of scenes')
    parser.add_argument('--seed', type=int, default=0, help='seed of the first scene')
    parser.add_argument('--size', type=parse_size, default=(640, 480), help='WIDTHxHEIGHT')
    parser.add_argument('--density', choices=DENSITIES, default='mixed')
    parser.add_argument('--preset', choices=PRESETS, default=DEFAULT_PRESET, help='scene preset')
    parser.add_argument('--format', choices=('scenes', *FORMATS), default='scenes',
                        help='scenes (RGB-D + masks + 3D boxes), coco or yolo')
    parser.add_argument('--classes', default=None,
                        help='coco/yolo: SRC:NAME[:ID],... the generator classes to keep, '
                             'renamed (default: all, under their own names)')
    args = parser.parse_args(argv)
    if args.classes is not None and args.format == 'scenes':
        parser.error('--classes needs --format coco or yolo')
    try:
        config = SceneConfig(width=args.size[0], height=args.size[1], density=args.density,
                             preset=args.preset)
        selection = parse_classes(args.classes, args.preset, args.format) \
            if args.format != 'scenes' else None
    except NeulensError as exc:
        parser.error(str(exc))
    started = time.monotonic()
    seeds = range(args.seed, args.seed + args.num)
    count = write_dataset(args.out, config, seeds, progress=True) if selection is None \
        else write_generated(args.out, args.format, config, seeds, selection, progress=True)
    print(f'neulens-gen-data: {count} scenes in {time.monotonic() - started:.1f} s -> '
          f'{args.out.resolve()}')
    return 0


if __name__ == '__main__':
    raise SystemExit(main())
