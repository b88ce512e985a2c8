"""The options neulens-train and neulens-eval detector share for a data set on disk (COCO or
YOLO, instead of generated scenes): reading it, listing what was skipped, splitting it."""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Any

from neulens_ros.data.annotated import FORMATS, DetectionDataset, describe_classes, split
from neulens_ros.data.formats import read_dataset
from neulens_ros.errors import DataError

SKIPPED_FILE = 'skipped.txt'  # written into the output folder: one skipped entry a line


def add_data_arguments(parser: argparse.ArgumentParser, training: bool) -> None:
    """--data, --data-format, --val-ratio and --skip-bad; for training also --val-data (and
    --val-ratio defaults to 0.2), for evaluation also --seed (the split's: neulens-train's
    --seed)."""
    group = parser.add_argument_group('a data set on disk instead of generated scenes '
                                      '(docs/data.md)')
    group.add_argument('--data', type=Path, default=None,
                       help='COCO data set (instances JSON or its folder) or YOLO folder')
    group.add_argument('--data-format', choices=FORMATS, default=None,
                       help='its format (default: recognised from the layout)')
    if training:
        group.add_argument('--val-data', type=Path, default=None,
                           help='validation data set (same classes); default: --val-ratio of '
                                '--data, drawn with --seed')
        group.add_argument('--val-ratio', type=float, default=0.2,
                           help='share of --data that validates (default 0.2)')
    else:
        group.add_argument('--val-ratio', type=float, default=None,
                           help='evaluate only this share of --data, drawn with --seed as '
                                'neulens-train draws its validation part (default: all)')
        group.add_argument('--seed', type=int, default=0,
                           help='seed of the --val-ratio draw (neulens-train --seed)')
    group.add_argument('--skip-bad', action='store_true',
                       help='skip bad entries (missing images, bad boxes, unknown classes, '
                            'malformed lines) and list them, instead of stopping at the first')


def read_data(path: Path, args: argparse.Namespace, prog: str, out: Path
              ) -> DetectionDataset:
    """The data set at `path`, with a summary and every skipped entry printed and written to
    out/SKIPPED_FILE."""
    data = read_dataset(path, args.data_format, args.skip_bad)
    print(f'{prog}: {data.summary()}', flush=True)
    for message in data.skipped:
        print(f'{prog}: skipped {message}')
    if data.skipped:
        out.mkdir(parents=True, exist_ok=True)
        with open(out / SKIPPED_FILE, 'a') as f:
            f.writelines(f'{message}\n' for message in data.skipped)
    return data


def same_classes(a: DetectionDataset, b: DetectionDataset) -> None:
    """DataError unless the two data sets have the same classes under the same ids."""
    if (a.class_names, a.class_ids) != (b.class_names, b.class_ids):
        raise DataError(f'{b.source} has classes '
                        f'{describe_classes(b.class_names, b.class_ids)}, {a.source} '
                        f'{describe_classes(a.class_names, a.class_ids)}: a validation data '
                        'set needs the same classes and ids')


def data_parts(args: argparse.Namespace, prog: str, out: Path
               ) -> tuple[DetectionDataset | None, DetectionDataset]:
    """(training part or None, validation part) of --data: --val-data validates and --data
    trains; else --val-ratio of --data (seed --seed) validates and the rest trains; without
    either, all of --data validates (evaluation)."""
    data = read_data(args.data, args, prog, out)
    if getattr(args, 'val_data', None) is not None:
        val = read_data(args.val_data, args, prog, out)
        same_classes(data, val)
        return data, val
    if args.val_ratio is None:
        return None, data
    return split(data, args.val_ratio, args.seed)


def data_description(train: DetectionDataset | None, val: DetectionDataset,
                     args: argparse.Namespace) -> dict[str, Any]:
    """What a run read: for the checkpoint's metadata and the evaluation's JSON."""
    val_data = getattr(args, 'val_data', None)
    return {'format': val.format, 'data': str(args.data),
            'val_data': None if val_data is None else str(val_data),
            'val_ratio': None if val_data is not None else args.val_ratio,
            'split_seed': args.seed, 'train_images': 0 if train is None else len(train),
            'val_images': len(val), 'skipped': len(val.skipped)
            + (0 if train is None or val_data is None else len(train.skipped))}
