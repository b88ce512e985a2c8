"""neulens-eval gate: does the gate lack data, or do the labels need more than one tile shows?

    neulens-train --detector neulens_detector --stages data,labels --threads 2   # labels
    neulens-eval gate --work runs/train --out runs/eval_gate

On the labelled tiles of a neulens-train work folder, with the gate stage's own split (the
same held-out images; the last point of the curve fits the same tiles as the gate stage):
- learning curve: the paper's gate, trained with the gate stage's recipe, on growing shares
  of the fitting images; accuracy on the same held-out tiles;
- capacity probe: a five-layer CNN with about 45 times the gate's parameters, on the same
  28 x 28 inputs with the same loss: how much of the labels one tile's content determines
  when the network is not the limit.
JSON + plot (accuracy against fitted tiles, with the majority class and the paper's range).
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import nn

from neulens_ros.errors import ConfigError
from neulens_ros.gate.cgg import CompressionGuidingGate
from neulens_ros.gate.training import GateData, GateTraining, gate_accuracy, train_gate
from neulens_ros.levels import NUM_LEVELS
from neulens_ros.models.names import DETECTOR
from neulens_ros.plots import pyplot, save
from neulens_ros.tools.command import recorded_command

PAPER_ACCURACY = (0.758, 0.857)  # the paper's gate accuracy range
PROBE_BLOCKS = ((64, 1), (64, 1), (128, 2), (128, 1), (256, 2))  # (channels, stride)


def probe_network() -> nn.Module:
    """[T, 3, 28, 28] -> [T, R]: 3x3 conv + BN + ReLU blocks, global average pool, dropout,
    linear."""
    layers: list[nn.Module] = []
    width = 3
    for out, stride in PROBE_BLOCKS:
        layers += [nn.Conv2d(width, out, 3, stride, 1), nn.BatchNorm2d(out), nn.ReLU()]
        width = out
    layers += [nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Dropout(0.3),
               nn.Linear(width, NUM_LEVELS)]
    return nn.Sequential(*layers)


def parameters(model: nn.Module) -> int:
    return sum(p.numel() for p in model.parameters())


def fit_and_score(model: nn.Module, fit: GateData, test: GateData, mac_ratio: np.ndarray,
                  cfg: GateTraining) -> dict[str, Any]:
    started = time.monotonic()
    train_gate(model, fit, mac_ratio, cfg)  # a progress bar over the epochs
    return {'tiles': len(fit.labels), 'train_accuracy': gate_accuracy(model, fit),
            'held_out_accuracy': gate_accuracy(model, test), 'epochs': cfg.epochs,
            'seconds': round(time.monotonic() - started, 1)}


def plot(result: dict[str, Any], out: Path) -> Path:
    plt = pyplot()
    fig, ax = plt.subplots(figsize=(6.4, 3.8))
    curve = result['curve']
    tiles = [r['tiles'] for r in curve]
    ax.plot(tiles, [r['held_out_accuracy'] for r in curve], 'o-', label='paper gate, held out')
    ax.plot(tiles, [r['train_accuracy'] for r in curve], 'o--', label='paper gate, fitted tiles')
    probe = result['probe']
    ax.plot([probe['tiles']], [probe['held_out_accuracy']], 's', color='C3',
            label=f'capacity probe ({probe["parameters"] // 1000}k parameters), held out')
    ax.axhline(result['majority_fraction'], color='grey', ls=':', label='majority class')
    ax.axhspan(*PAPER_ACCURACY, color='C2', alpha=0.12, label="paper's gate accuracy")
    ax.set_xscale('log')
    ax.set_xlabel('fitted tiles')
    ax.set_ylabel('accuracy against the labels')
    ax.set_ylim(0, 1)
    ax.grid(alpha=0.3)
    ax.legend(fontsize=8, loc='lower right')
    return save(fig, out / 'gate_learning_curve.png', dpi=110)


def fractions(text: str) -> list[float]:
    values = sorted({float(v) for v in text.split(',') if v.strip()})
    if not values or values[0] <= 0 or values[-1] > 1:
        raise argparse.ArgumentTypeError('give shares in (0, 1], e.g. 0.25,0.5,1')
    return values


def main(argv: list[str] | None = None) -> int:
    from neulens_ros.models.zoo import detector_halo, load_detector
    from neulens_ros.train.data import load_set
    from neulens_ros.train.pipeline import (gate_data, level_mac_ratio, load_labels,
                                            split_labelled)
    from neulens_ros.train.plan import detector_training_set
    parser = argparse.ArgumentParser(prog='neulens-eval gate', description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument('--work', type=Path, default=Path('runs/train'),
                        help='neulens-train work folder with labels.npz and the scene cache')
    parser.add_argument('--smoke', action='store_true', help='the work folder of a --smoke run')
    parser.add_argument('--seed', type=int, default=0, help='the neulens-train seed')
    parser.add_argument('--detector', default=DETECTOR,
                        help='detector of the labels (its preset and input size give the '
                             'scenes; its MACs the cost of each level)')
    parser.add_argument('--fractions', type=fractions, default=fractions('0.25,0.5,1'),
                        help='shares of the fitting images for the learning curve')
    parser.add_argument('--probe-epochs', type=int, default=15,
                        help='epochs of the capacity probe (about 30 s each on 2 cores)')
    parser.add_argument('--threads', type=int, default=0, help='torch threads (0 = default)')
    parser.add_argument('--out', type=Path, default=Path('runs/eval_gate'))
    args = parser.parse_args(argv)
    if args.probe_epochs < 1:
        parser.error('--probe-epochs must be at least 1')
    labels_path = args.work / 'labels.npz'
    if not labels_path.is_file():
        print(f'neulens-eval gate: {labels_path} not found: label the tiles first with '
              f'neulens-train --detector {args.detector} --stages data,labels --work '
              f'{args.work}', file=sys.stderr)
        return 2
    if args.threads:
        torch.set_num_threads(args.threads)
    model, meta = load_detector(args.detector)
    plan, spec = detector_training_set(meta, args.seed, args.smoke)
    train = load_set(spec, args.work / 'cache')
    halo = detector_halo(meta)  # the labels were made with it, and the MACs follow it
    try:
        labels = load_labels(labels_path, halo)
    except ConfigError as exc:
        print(f'neulens-eval gate: {exc} (or pass --detector with the detector that labelled '
              f'them)', file=sys.stderr)
        return 2
    fit_images, held_out = split_labelled(labels, args.seed)
    test = gate_data(train, labels, held_out)
    mac_ratio = level_mac_ratio(model, halo)
    cfg = GateTraining(epochs=plan.gate_epochs, seed=args.seed)
    curve = []
    for share in args.fractions:
        images = fit_images[:max(1, round(share * len(fit_images)))]
        torch.manual_seed(args.seed)  # every model starts from weights drawn from the seed
        row = fit_and_score(CompressionGuidingGate(), gate_data(train, labels, images), test,
                            mac_ratio, cfg)
        curve.append({'fraction': share, 'images': len(images), **row})
        print(f'neulens-eval gate: paper gate on {row["tiles"]} tiles: '
              f'{row["held_out_accuracy"]:.3f} held out, {row["train_accuracy"]:.3f} fitted',
              flush=True)
    torch.manual_seed(args.seed)
    probe = probe_network()
    probe_row = fit_and_score(probe, gate_data(train, labels, fit_images), test, mac_ratio,
                              GateTraining(epochs=args.probe_epochs, lr=1e-3, seed=args.seed))
    probe_row['parameters'] = parameters(probe)
    print(f'neulens-eval gate: capacity probe ({probe_row["parameters"]} parameters): '
          f'{probe_row["held_out_accuracy"]:.3f} held out, '
          f'{probe_row["train_accuracy"]:.3f} fitted', flush=True)
    counts = np.bincount(test.labels.numpy(), minlength=NUM_LEVELS)
    result = {'info': {'command': recorded_command('neulens-eval gate', argv),
                       'threads': torch.get_num_threads()},
              'held_out_tiles': len(test.labels), 'held_out_histogram': counts.tolist(),
              'majority_fraction': float(counts.max() / counts.sum()),
              'gate_parameters': parameters(CompressionGuidingGate()),
              'curve': curve, 'probe': probe_row}
    args.out.mkdir(parents=True, exist_ok=True)
    (args.out / 'gate_eval.json').write_text(json.dumps(result, indent=1))
    print(f'json: {args.out / "gate_eval.json"}\nplot: {plot(result, args.out)}')
    return 0


if __name__ == '__main__':
    raise SystemExit(main())
