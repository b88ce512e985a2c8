"""neulens-train: reproduce the shipped detector supernet and gate from a seed.

    neulens-train --work runs/train                 # full run (data, supernet, labels, gate,
                                                    # calibration, evaluation, export)
    neulens-train --work runs/train --stages gate,eval,export     # resume later stages
    neulens-train --smoke --work runs/smoke         # a minute-long end-to-end check
    neulens-train --detector neulens_detector --stages labels,gate,calibrate,eval,export
                                                    # retrain the gate of a trained detector

Every stage is resumable: data sets are cached, the supernet checkpoints every 100 steps, and
finished stages leave their result in --work. `export` writes the shipped checkpoints and
their metadata (architecture, classes, input size, P options, this command, seeds, metrics)
into the package, plus plots into --work/plots.
"""

from __future__ import annotations

import argparse
import json
import shlex
import sys
import time
from dataclasses import asdict, dataclass
from pathlib import Path

import torch

from neulens_ros.data.shapes import CLASSES
from neulens_ros.supernet.detector import P_LAYERS, P_OPTIONS, DetectorConfig, TileDetector
from neulens_ros.train.data import SetSpec, load_set
from neulens_ros.train.supernet import SupernetTraining, train_supernet

STAGES = ('data', 'supernet', 'labels', 'gate', 'calibrate', 'eval', 'export')


@dataclass(frozen=True)
class Plan:
    """Sizes of one training run (full or smoke)."""

    train_scenes: int
    val_scenes: int
    label_scenes: int
    supernet_steps: int
    batch_size: int
    gate_epochs: int
    val_render: tuple[int, int]
    calibration_scenes: int


FULL = Plan(train_scenes=3000, val_scenes=300, label_scenes=250, supernet_steps=1200,
            batch_size=16, gate_epochs=30, val_render=(640, 480), calibration_scenes=200)
SMOKE = Plan(train_scenes=24, val_scenes=8, label_scenes=6, supernet_steps=4, batch_size=4,
             gate_epochs=2, val_render=(320, 240), calibration_scenes=6)
VAL_SEED = 1_000_000  # validation scenes never overlap the training seeds


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog='neulens-train', description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument('--work', type=Path, default=Path('runs/train'),
                        help='folder for caches, checkpoints, logs and plots')
    parser.add_argument('--seed', type=int, default=0)
    parser.add_argument('--stages', default=','.join(STAGES),
                        help=f'comma-separated subset of {",".join(STAGES)}')
    parser.add_argument('--smoke', action='store_true', help='tiny sizes, for tests')
    parser.add_argument('--export-dir', type=Path, default=None,
                        help='where export writes the checkpoints (default: the package)')
    parser.add_argument('--threads', type=int, default=0, help='torch threads (0 = default)')
    parser.add_argument('--quiet', action='store_true', help='no progress bars')
    parser.add_argument('--detector', default='',
                        help='start the later stages from this detector checkpoint (name or '
                             '.pt) instead of a supernet trained in --work; the supernet '
                             'stage is then not allowed')
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    stages = [s.strip() for s in args.stages.split(',') if s.strip()]
    unknown = sorted(set(stages) - set(STAGES))
    if unknown:
        print(f'neulens-train: unknown stage(s) {unknown}; stages are {", ".join(STAGES)}',
              file=sys.stderr)
        return 2
    if args.detector and 'supernet' in stages:
        print('neulens-train: --detector starts after the supernet stage; drop "supernet" from '
              '--stages', file=sys.stderr)
        return 2
    if args.threads:
        torch.set_num_threads(args.threads)
    plan = SMOKE if args.smoke else FULL
    config = DetectorConfig(num_classes=len(CLASSES))
    size = (config.input_width, config.input_height)
    work = args.work
    work.mkdir(parents=True, exist_ok=True)
    progress = not args.quiet
    command = 'neulens-train ' + ' '.join(shlex.quote(a) for a in (argv or sys.argv[1:]))
    log_path = work / 'log.jsonl'

    def log(record: dict) -> None:
        with open(log_path, 'a') as f:
            f.write(json.dumps(record) + '\n')

    started = time.monotonic()
    train_spec = SetSpec(args.seed, plan.train_scenes, (320, 240), size)
    val_spec = SetSpec(VAL_SEED + args.seed, plan.val_scenes, plan.val_render, size)
    train = load_set(train_spec, work / 'cache', progress)
    val = load_set(val_spec, work / 'cache', progress)
    print(f'neulens-train: {len(train)} training and {len(val)} validation scenes '
          f'({time.monotonic() - started:.0f} s)')
    model = TileDetector(config)
    ckpt = work / 'supernet.ckpt'
    detector_command = command
    if args.detector:
        from neulens_ros.models.zoo import load_detector
        model, meta = load_detector(args.detector)
        detector_command = f'{meta.get("training_command", "?")}; later stages: {command}'
        print(f'neulens-train: detector from {args.detector}')
    elif 'supernet' in stages or ckpt.is_file():
        cfg = SupernetTraining(steps=plan.supernet_steps, batch_size=plan.batch_size,
                               seed=args.seed)
        history = train_supernet(model, train, cfg, ckpt, log=None, progress=progress)
        (work / 'supernet_history.json').write_text(json.dumps(history))
        print(f'neulens-train: supernet at step {len(history)} '
              f'({time.monotonic() - started:.0f} s)')
    from neulens_ros.train.pipeline import run_later_stages
    return run_later_stages(stages, model, train, val, plan, work, args,
                            (command, detector_command), config, started, log, progress)


def architecture(config: DetectorConfig) -> dict:
    return {**asdict(config), 'classes': list(CLASSES), 'p_options': list(P_OPTIONS),
            'p_layers': P_LAYERS}


if __name__ == '__main__':
    raise SystemExit(main())
