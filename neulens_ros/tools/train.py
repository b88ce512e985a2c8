"""neulens-train: reproduce the shipped detector supernet and gate from a seed.

    neulens-train --work runs/train                 # full run (data, supernet, labels, gate,
                                                    # calibration, evaluation, export)
    neulens-train --work runs/train --stages gate,eval,export     # resume later stages
    neulens-train --smoke --work runs/smoke         # a minute-long end-to-end check
    neulens-train --detector neulens_detector --stages labels,gate,calibrate,eval,export
                                                    # retrain the gate of a trained detector
    neulens-train --detector neulens_detector_hard --gate-labels paper \
        --stages labels,gate,calibrate,export       # the paper's gate beside the shipped one
    neulens-train --detector neulens_detector_hard --gate neulens_cgg_hard \
        --stages calibrate,export                   # calibrate a shipped gate again
    neulens-train --data data/coco --work runs/mine # a COCO or YOLO data set on disk: its
                                                    # classes, a fifth of it validates

Every stage is resumable: data sets are cached, the supernet checkpoints every 100 steps, and
finished stages leave their result in --work. `export` writes the shipped checkpoints and
their metadata (architecture, classes, input size, P options, this command, seeds, metrics)
into the package, plus plots into --work/plots. A --data run exports into --work/weights
(unless --export-dir says otherwise) and records the data set's class names and ids.
"""

from __future__ import annotations

import argparse
import json
from dataclasses import replace
import sys
import time
from pathlib import Path

import numpy as np
import torch

from neulens_ros.data.annotated import DetectionDataset
from neulens_ros.data.scenes import PRESETS, class_names
from neulens_ros.errors import ConfigError, NeulensError
from neulens_ros.models.names import DATASET_PRESET, DEFAULT_PRESET
from neulens_ros.supernet.detector import TileDetector
from neulens_ros.supernet.pretrained import load_backbone_file
from neulens_ros.tools.data_args import add_data_arguments, data_description, data_parts
from neulens_ros.models.zoo import (checkpoint_labels, checkpoint_preset, detector_halo,
                                   load_detector, load_gate)
from neulens_ros.train.data import (DataSource, DetectionSet, dataset_set, load_set,
                                    to_checkpoint_classes)
from neulens_ros.train.plan import (GATE_LABELS, fit_to_images, plan_for, training_set,
                                    validation_set, with_gate_labels)
from neulens_ros.train.pretrain import Pretraining, pretrain_backbone
from neulens_ros.train.supernet import train_supernet
from neulens_ros.tools.command import recorded_command

STAGES = ('data', 'supernet', 'labels', 'gate', 'calibrate', 'eval', 'export')
AFTER_GATE = ('calibrate', 'eval', 'export')
NEED_DETECTOR = ('labels', 'gate', 'calibrate', 'eval', 'export')  # after the supernet
LATER = '; later stages: '  # joins a checkpoint's training command and a run's started from it


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog='neulens-train', description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument('--work', type=Path, default=Path('runs/train'),
                        help='folder for caches, checkpoints, logs and plots')
    parser.add_argument('--seed', type=int, default=0)
    parser.add_argument('--stages', default=None,
                        help=f'comma-separated subset of {",".join(STAGES)} (default: all; '
                             f'with --detector all but supernet; with --gate '
                             f'{",".join(AFTER_GATE)})')
    parser.add_argument('--smoke', action='store_true', help='tiny sizes, for tests')
    parser.add_argument('--preset', choices=PRESETS, default=None,
                        help=f'scene preset to train on (default {DEFAULT_PRESET!r}; with '
                             "--detector the detector's own)")
    parser.add_argument('--gate-labels', choices=GATE_LABELS, default=None,
                        help="what the gate learns: 'paper' (the supernet's labels, NeuLens "
                             "4.4) or 'kinds' (ground-truth tile kinds, with a neighbour "
                             "context input); default: the preset's plan (hard: kinds, else "
                             "paper; --smoke: paper). With --detector, other labels than the "
                             "plan's export the gate alone, as <gate name>_<labels>")
    parser.add_argument('--halo', default=None,
                        help="the halo the detector runs its tiles with: 'paper', 'exact' or "
                             "pixels (default: the preset's plan, hard: 2; with "
                             "--detector the checkpoint's). Labels, calibration and evaluation "
                             'use it and the export records it')
    parser.add_argument('--export-dir', type=Path, default=None,
                        help='where export writes the checkpoints (default: the package)')
    parser.add_argument('--threads', type=int, default=0, help='torch threads (0 = default)')
    parser.add_argument('--quiet', action='store_true', help='no progress bars')
    parser.add_argument('--detector', default='',
                        help='start the later stages from this detector checkpoint (name or '
                             '.pt) instead of a supernet trained in --work; the supernet '
                             'stage is then not allowed')
    parser.add_argument('--gate', default='',
                        help='start the calibrate, eval and export stages from this gate '
                             'checkpoint (name or .pt; its labels are the run\'s) instead of a '
                             'gate fitted in --work; the gate stage is then not allowed')
    parser.add_argument('--backbone-weights', type=Path, default=None,
                        help='start the backbone from this torchvision ResNet state_dict '
                             '(.pth, saved with torch.save(model.state_dict(), path)), sliced '
                             "into the supernet's widths and levels; not with --detector")
    add_data_arguments(parser, training=True)
    return parser


def resolve_stages(given: str | None, from_detector: bool, from_gate: bool = False
                   ) -> list[str]:
    """The --stages list; by default every stage, but for the supernet when the run starts
    from a detector checkpoint, and the stages after the gate when it starts from a gate
    checkpoint."""
    if given is not None:
        return [s.strip() for s in given.split(',') if s.strip()]
    if from_gate:
        return list(AFTER_GATE)
    return [s for s in STAGES if not (from_detector and s == 'supernet')]


def later_command(meta: dict, command: str) -> str:
    """The training command a checkpoint exported by a run that started from it records: the
    checkpoint's own (what an earlier such run appended dropped), then `command`."""
    return f'{meta.get("training_command", "?").split(LATER)[0]}{LATER}{command}'


def gate_from_checkpoint(name: str, command: str, preset: str) -> tuple[str, str]:
    """(the labels the gate of checkpoint `name` learnt, the training command its export
    records); ConfigError for a gate of another scene preset than the run's `preset`."""
    _, meta = load_gate(name)
    made_for = meta.get('preset', 'easy')
    if made_for != preset:
        raise ConfigError(f'{name} is a gate of the {made_for!r} preset, this run is on '
                          f'{preset!r}: give a gate and a --detector of the same preset')
    return meta.get('labels', 'paper'), later_command(meta, command)


def detector_from_checkpoint(name: str, command: str, preset: str | None
                             ) -> tuple[TileDetector, str, str, dict]:
    """(the detector of checkpoint `name`, the training command its export records: the
    checkpoint's own, then `command`, replacing what an earlier --detector run appended,
    the preset it was trained on, which a given `preset` must match, and its metadata)."""
    model, meta = load_detector(name)
    trained_on = checkpoint_preset(meta)
    if preset is not None and preset != trained_on:
        raise ConfigError(f'{name} was trained on the {trained_on!r} preset, not {preset!r}: '
                          f'drop --preset or pass --preset {trained_on}')
    return model, later_command(meta, command), trained_on, meta


def data_source(args: argparse.Namespace, meta: dict | None, work: Path
                ) -> tuple[DetectionDataset, DetectionDataset, DataSource]:
    """(training part, validation part, their DataSource) of --data; with a detector
    checkpoint's metadata `meta`, in the checkpoint's classes."""
    train, val = data_parts(args, 'neulens-train', work)
    if meta is not None:
        labels = checkpoint_labels(meta)
        train, val = (to_checkpoint_classes(part, labels.names, labels.ids)
                      for part in (train, val))
    return train, val, DataSource(val.class_names, val.class_ids,
                                  data_description(train, val, args))


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    stages = resolve_stages(args.stages, bool(args.detector), bool(args.gate))
    unknown = sorted(set(stages) - set(STAGES))
    if unknown:
        print(f'neulens-train: unknown stage(s) {unknown}; stages are {", ".join(STAGES)}',
              file=sys.stderr)
        return 2
    if args.detector and 'supernet' in stages:
        print('neulens-train: --detector starts after the supernet stage; drop "supernet" from '
              '--stages', file=sys.stderr)
        return 2
    if args.gate and 'gate' in stages:
        print('neulens-train: --gate starts after the gate stage; drop "gate" from --stages',
              file=sys.stderr)
        return 2
    if args.gate and args.gate_labels:
        print("neulens-train: --gate brings its own labels: drop --gate-labels",
              file=sys.stderr)
        return 2
    if args.detector and args.backbone_weights:
        print('neulens-train: --backbone-weights starts a new supernet, --detector a trained '
              'one: give one of them', file=sys.stderr)
        return 2
    if args.threads:
        torch.set_num_threads(args.threads)
    if args.data is not None and args.preset is not None:
        print('neulens-train: --preset picks generated scenes; a --data run trains on the '
              "data set's images and classes: drop --preset", file=sys.stderr)
        return 2
    command = recorded_command('neulens-train', argv)
    detector_command = gate_command = command
    work = args.work
    progress = not args.quiet
    meta, source = None, None
    try:
        if args.detector:
            model, detector_command, args.preset, meta = detector_from_checkpoint(
                args.detector, command, args.preset)
            print(f'neulens-train: detector from {args.detector} ({args.preset} preset)')
        if args.data is not None:
            train_data, val_data, source = data_source(args, meta, work)
            args.preset = DATASET_PRESET
            args.export_dir = args.export_dir or work / 'weights'
        args.preset = args.preset or DEFAULT_PRESET
        plan = plan_for(args.preset, args.smoke)
        if args.gate:
            args.gate_labels, gate_command = gate_from_checkpoint(args.gate, command,
                                                                   args.preset)
            print(f'neulens-train: gate from {args.gate} ({args.gate_labels} labels)')
        if args.gate_labels:
            plan = with_gate_labels(plan, args.gate_labels)
        if args.halo or meta is not None:  # a given halo, else a checkpoint's own
            plan = replace(plan, halo=args.halo or detector_halo(meta))
        if not args.detector:
            model = TileDetector(plan.detector_config(len(
                source.class_names if source else class_names(args.preset))))
        if args.backbone_weights is not None:
            print(f'neulens-train: backbone weights from {args.backbone_weights}: '
                  + load_backbone_file(model, args.backbone_weights).describe())
        if source:
            plan = fit_to_images(plan, len(train_data))
    except NeulensError as exc:
        print(f'neulens-train: {exc}', file=sys.stderr)
        return 2
    needs = [s for s in stages if s in NEED_DETECTOR]
    if needs and not args.detector and 'supernet' not in stages and \
            not (work / 'supernet.ckpt').is_file():
        print(f'neulens-train: the {", ".join(needs)} stage(s) need a trained detector: give '
              f'--detector (a checkpoint name or .pt) or run the supernet stage in {work}',
              file=sys.stderr)
        return 2
    work.mkdir(parents=True, exist_ok=True)
    config = model.config
    size = (config.input_width, config.input_height)
    log_path = work / 'log.jsonl'

    def log(record: dict) -> None:
        with open(log_path, 'a') as f:
            f.write(json.dumps(record) + '\n')

    from neulens_ros.train.pipeline import RunSets, run_later_stages  # torch-heavy stages
    started = time.monotonic()

    def load(part: str) -> DetectionSet:
        """The run's training or validation set (`part`), rendered or read and cached."""
        if source:
            return dataset_set(train_data if part == 'train' else val_data, size, progress)
        spec = (training_set if part == 'train' else validation_set)(plan, args.seed, size,
                                                                      args.preset)
        return load_set(spec, work / 'cache', progress)
    sets = RunSets(lambda: load('train'), lambda: load('val'))
    if 'data' in stages:
        print(f'neulens-train: {len(sets.train)} training and {len(sets.val)} validation '
              f'{"images" if source else "scenes"} ({time.monotonic() - started:.0f} s)')
    try:
        ckpt = work / 'supernet.ckpt'
        if not args.detector and ('supernet' in stages or ckpt.is_file()):
            if not ckpt.is_file() and plan.pretrain_steps:
                pre = pretrain_backbone(model, sets.train, Pretraining(plan.pretrain_steps,
                                                                  seed=args.seed), progress)
                (work / 'pretrain_history.json').write_text(json.dumps(pre))
                print(f'neulens-train: backbone pre-trained on object crops, batch accuracy '
                      f'{np.mean([r["accuracy"] for r in pre[-50:]]):.2f} over the last 50 '
                      f'steps ({time.monotonic() - started:.0f} s)')
            history = train_supernet(model, sets.train, plan.supernet_training(args.seed), ckpt,
                                     log=None, progress=progress)
            (work / 'supernet_history.json').write_text(json.dumps(history))
            print(f'neulens-train: supernet at step {len(history)} '
                  f'({time.monotonic() - started:.0f} s)')
        return run_later_stages(stages, model, sets, plan, work, args,
                                (gate_command, detector_command), started, log, progress,
                                source)
    except NeulensError as exc:  # a checkpoint or calibration of another run
        print(f'neulens-train: {exc}', file=sys.stderr)
        return 2


if __name__ == '__main__':
    raise SystemExit(main())
