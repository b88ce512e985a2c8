"""neulens-bench gate: the CGG's cost per frame on each backend, side by side.

    neulens-bench gate --threads 1 --rounds 200 --out runs/bench_gate

For every k, the shipped gate runs on held-out generated scenes (the detector's preset, at its
network input) on eager PyTorch and on ONNX Runtime, round robin (runtime/timing.py). Reported
per k and backend: the whole gate (area resize, split, network, softmax, arg-max: what
`run_gate` does in the gate node) and its input part alone; plus the per-frame sum over
k = 2, 3, 4 (the gate node scores every k DEMUX may pick), and the largest logit difference and
level agreement between the backends, so the speed-up is shown to be the same function. JSON
and a bar chart go to --out.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path
from typing import Any

import numpy as np
import torch

from neulens_ros.gate.cgg import gate_tiles
from neulens_ros.gate.runtime import GATE_BACKENDS, gate_net, time_gate
from neulens_ros.levels import TILE_GRIDS as KS
from neulens_ros.models.zoo import DETECTOR, GATE, detector_metadata, load_gate
from neulens_ros.plots import pyplot, save
from neulens_ros.train.data import load_set
from neulens_ros.train.plan import detector_held_out_set
from neulens_ros.tools.command import recorded_command


def agreement(nets: dict[str, Any], images: list[np.ndarray]) -> dict[str, float]:
    """Largest |logit difference| and the share of tiles with the same level, ONNX Runtime
    against PyTorch, over every image and k."""
    diff, same, total = 0.0, 0, 0
    with torch.inference_mode():
        for image in images:
            for k in KS:
                tiles = gate_tiles(image, k)
                a, b = nets['torch'](tiles), nets['onnxruntime'](tiles)
                diff = max(diff, float((a - b).abs().max()))
                same += int((a.argmax(1) == b.argmax(1)).sum())
                total += k * k
    return {'max_logit_difference': diff, 'same_level_share': same / total}


def plot(per_k: dict[str, dict[str, float]], out: Path) -> Path:
    plt = pyplot()
    fig, ax = plt.subplots(figsize=(6, 3.5))
    width = 0.38
    xs = np.arange(len(KS))
    for i, name in enumerate(GATE_BACKENDS):
        values = [per_k[f'k{k}'][name] for k in KS]
        ax.bar(xs + (i - 0.5) * width, values, width, label=name)
    ax.plot(xs, [per_k[f'k{k}']['inputs'] for k in KS], 'k_', markersize=30,
            label='input resize + split (both)')
    ax.axhline(1.0, color='grey', linestyle=':', linewidth=1)
    ax.set_xticks(xs, [f'k = {k}' for k in KS])
    ax.set_ylabel('gate per frame (ms, median)')
    ax.legend(fontsize=8)
    return save(fig, out / 'gate_cost.png')


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog='neulens-bench gate', description=__doc__.split(
        '\n\n')[0])
    parser.add_argument('--out', type=Path, default=Path('runs/bench_gate'))
    parser.add_argument('--images', type=int, default=16, help='held-out scenes cycled')
    parser.add_argument('--rounds', type=int, default=200)
    parser.add_argument('--threads', type=int, default=1,
                        help='torch threads (1 = as the gate node runs; 0 = its default); '
                             'ONNX Runtime runs the gate on one thread either way')
    parser.add_argument('--gate', default=GATE, help='gate checkpoint')
    parser.add_argument('--detector', default=DETECTOR,
                        help="detector checkpoint whose input and preset the gate's scenes have")
    args = parser.parse_args(argv)
    if args.threads:
        torch.set_num_threads(args.threads)
    args.out.mkdir(parents=True, exist_ok=True)
    spec = detector_held_out_set(detector_metadata(args.detector), args.images)
    data = load_set(spec, args.out / 'cache')
    images = [np.ascontiguousarray(image) for image in data.images]
    gate, _ = load_gate(args.gate)
    nets = {name: gate_net(gate, name, KS) for name in GATE_BACKENDS}
    per_k = time_gate(nets, images, KS, args.rounds)
    frame = {name: sum(per_k[f'k{k}'][name] for k in KS) for name in GATE_BACKENDS}
    result = {'info': {'command': recorded_command('neulens-bench gate', argv),
                       'threads': torch.get_num_threads(), 'images': len(images),
                       'rounds': args.rounds, 'input_size': list(spec.input_size),
                       'preset': spec.preset},
              'per_k_ms': per_k, 'frame_all_k_ms': frame,
              'onnxruntime_over_torch': {key: row['onnxruntime'] / row['torch']
                                         for key, row in per_k.items()},
              'agreement': agreement(nets, images)}
    (args.out / 'gate.json').write_text(json.dumps(result, indent=1))
    path = plot(per_k, args.out)
    for k in KS:
        row = per_k[f'k{k}']
        print(f'k = {k}: ' + ', '.join(f'{name} {row[name]:.3f} ms' for name in
                                        (*GATE_BACKENDS, 'inputs')))
    print('per frame (k = 2, 3, 4): ' + ', '.join(f'{n} {v:.2f} ms' for n, v in frame.items()))
    print(f'backends agree: {result["agreement"]}')
    print(f'json: {args.out / "gate.json"}\nplot: {path}')
    return 0
