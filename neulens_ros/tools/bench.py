"""neulens-bench [supernet]: speed of the tile-level supernet, side by side in one run.
(`neulens-bench link ...` is the headset-edge experiment over the emulated link,
`neulens-bench slo ...` the SLO sweep and contention run of DEMUX, `neulens-bench gate ...`
the gate's cost per backend.)

    neulens-bench --out runs/bench            # JSON + PNG, a few minutes
    neulens-bench --quick --out runs/bench_quick  # a few seconds, for tests
    neulens-bench --models resnet50 --backends onnxruntime,onnxruntime-static --ks 3 --ps layer3

For the detector's front at each split point with k x k tiles (paper halo), on each backend:
the untiled full-width front, tiled level 0 (the tiling overhead), every uniform level, the
mixed assignment of the paper's example (k = 3: 2 tiles at level 0, 3 at level 2, 2 at level 3,
2 skipped), one call per tile against one call per level, level 0 with the other halo modes
(`level0_halo_exact`, `level0_halo_8`: their MAC and latency overhead), the DS-Net-style
baseline (`masked<l>`: every tile at full width, each convolution's output channels beyond
level l's width zeroed, so the MACs are level 0's) and, on eager PyTorch, levels 0 and 3
under bfloat16 autocast (`level<l>_bf16`). Variants are measured round robin (every round
runs every variant once) and reported as medians, so machine noise hits
all of them alike; speed is given as ratios to tiled level 0 measured in the same run:
latency ratio, MAC ratio and the latency conversion efficiency (1 - latency ratio) /
(1 - MAC ratio) (1.0 = every MAC saved is time saved).
"""

from __future__ import annotations

import argparse
import importlib
import json
import sys
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any, Callable

import numpy as np
import torch
from torch import nn

from neulens_ros.errors import NeulensError
from neulens_ros.models.zoo import DETECTOR, load_detector
from neulens_ros.runtime.backends import front_runners, model_hash, tile_shapes
from neulens_ros.runtime.timing import round_robin_ms
from neulens_ros.supernet.backbones import RESNET_P_OPTIONS, ResNet50, resnet_front
from neulens_ros.supernet.detector import P_OPTIONS
from neulens_ros.supernet.executor import FrontExecutor, crop_frames
from neulens_ros.supernet.macs import count_macs
from neulens_ros.supernet.slim import LEVEL_SKIP, SlimConv2d, level_width, set_level
from neulens_ros.supernet.tiling import TileGrid, tile_grid
from neulens_ros.plots import pyplot, save

MIXED_K3 = (0, 2, 3, 0, 2, 4, 3, 2, 4)  # 2 x level 0, 3 x level 2, 2 x level 3, 2 skipped
# ONNX Runtime with a session per exact input shape (every batch size, and the whole frame)
STATIC_ORT = 'onnxruntime-static'
OTHER_HALOS = ('exact', 8)  # besides the paper halo every variant uses
COMMANDS = {  # sub-commands besides the default one, `supernet`
    'link': 'neulens_ros.tools.bench_link',
    'slo': 'neulens_ros.tools.bench_slo',
    'gate': 'neulens_ros.tools.bench_gate',
}


@dataclass(frozen=True)
class BenchModel:
    name: str
    fronts: dict[str, nn.Module]  # P -> slimmable front
    size: tuple[int, int]  # input height, width
    tag: str  # weights hash for the ONNX cache


def bench_models(names: list[str], detector: str = DETECTOR) -> list[BenchModel]:
    """The models to time: a ResNet-50 of seeded weights, and the `detector` checkpoint."""
    out = []
    for name in names:
        if name == 'resnet50':
            torch.manual_seed(0)
            net = ResNet50().eval()
            fronts = {p: resnet_front(net, p) for p in RESNET_P_OPTIONS}
            out.append(BenchModel(name, fronts, (224, 224), model_hash(net)))
        elif name == 'detector':
            det, _ = load_detector(detector)
            cfg = det.config
            out.append(BenchModel(name, {p: det.front(p) for p in P_OPTIONS},
                                  (cfg.input_height, cfg.input_width), model_hash(det)))
        else:
            raise NeulensError(f'unknown model {name!r}: use resnet50 or detector')
    return out


def variants(front: nn.Module, size: tuple[int, int], k: int, runners: dict,
             halos: tuple = OTHER_HALOS) -> dict[str, tuple]:
    """name -> (callable, MACs) for one front, k and backend; `halos` = the other halo
    modes to run level 0 with."""
    h, w = size
    per_level = FrontExecutor(front, runners)
    per_tile = FrontExecutor(front, runners, per_tile_calls=True)
    grid = tile_grid(per_level.chain, w, h, k, 'paper')
    image = torch.randn(1, 3, h, w)
    tiles = crop_frames(image, grid)

    def front_macs(levels: np.ndarray, on: TileGrid) -> int:
        total = 0
        for t, level in enumerate(levels.tolist()):
            if level != LEVEL_SKIP:
                tw, th = on.tile_input_size(t)
                set_level(front, level)
                total += count_macs(front, (1, 3, th, tw))
        set_level(front, 0)
        return total

    untiled = runners.get(0) or front  # the same backend as the tiles
    out: dict[str, tuple] = {'untiled': (lambda: untiled(image),
                                         count_macs(front, (1, 3, h, w)))}
    assignments = {f'level{lv}': np.full(k * k, lv) for lv in range(4)}
    if k == 3:
        assignments['mixed'] = np.array(MIXED_K3)
    for name, levels in assignments.items():
        out[name] = (lambda lv=levels: per_level.stitch(tiles, lv, grid),
                     front_macs(levels, grid))
    out['level0_per_tile_calls'] = (lambda: per_tile.stitch(tiles, assignments['level0'], grid),
                                    out['level0'][1])
    for halo in halos:  # the halo modes' overhead: level 0 on their own grids
        other = tile_grid(per_level.chain, w, h, k, halo)
        other_tiles = crop_frames(image, other)
        out[f'level0_halo_{halo}'] = (
            lambda g=other, t=other_tiles: per_level.stitch(t, assignments['level0'], g),
            front_macs(assignments['level0'], other))
    if not runners:  # masking and autocast need the eager slimmable modules
        for lv in range(1, LEVEL_SKIP):
            out[f'masked{lv}'] = (lambda lv=lv: masked(front, lv, lambda: per_level.stitch(
                tiles, assignments['level0'], grid)), out['level0'][1])
        for lv in (0, 3):
            out[f'level{lv}_bf16'] = (lambda lv=lv: bf16(lambda: per_level.stitch(
                tiles, assignments[f'level{lv}'], grid)), out[f'level{lv}'][1])
    return out


def bf16(run: Callable[[], Any]) -> Any:
    """`run()` under CPU bfloat16 autocast (convolutions and matmuls in bf16)."""
    with torch.autocast('cpu', dtype=torch.bfloat16):
        return run()


def masked(front: nn.Module, level: int, run: Callable[[], Any]) -> Any:
    """`run()` with every slimmable convolution of `front` at full width but its output
    channels beyond `level`'s width zeroed (DS-Net-style dynamic width by masking)."""
    masks = {}
    for m in front.modules():
        if isinstance(m, SlimConv2d):
            mask = torch.zeros(m.out_channels, 1, 1)  # [C, 1, 1], built once, not per call
            mask[:level_width(m.out_channels, level)] = 1
            masks[m] = mask

    def hook(module: SlimConv2d, _inputs: object, out: torch.Tensor) -> torch.Tensor:
        return out * masks[module]
    handles = [m.register_forward_hook(hook) for m in masks]
    try:
        return run()
    finally:
        for h in handles:
            h.remove()


def run(models: list[BenchModel], backends: list[str], ks: list[int],
        ps: list[str] | None, rounds: int, cache_dir: str) -> list[dict[str, Any]]:
    """Records of every (model, backend, P, k); `ps` None = every split point."""
    from neulens_ros.progress import progress_bar
    records = []
    jobs = [(m, b, p, k) for m in models for b in backends
            for p in m.fronts if ps is None or p in ps for k in ks]
    if not jobs:
        raise NeulensError(f'no split point of {[m.name for m in models]} is in {ps}')
    for model, backend, p, k in progress_bar(jobs, desc='bench', unit='config'):
        fronts = {p: model.fronts[p]}
        static = backend == STATIC_ORT
        _, runners = front_runners(fronts, model.tag, 'onnxruntime' if static else backend,
                                   'fp32', cache_dir, k * k, model.size,
                                   tile_shapes(fronts, model.size, [k], static))
        # ONNX Runtime has sessions made for the paper grid's shapes only: the other halos'
        # tiles would run on its dynamic session, not a like-for-like comparison
        vs = variants(model.fronts[p], model.size, k, runners.get(p, {}),
                      () if backend.startswith('onnxruntime') else OTHER_HALOS)
        ms = round_robin_ms({n: fn for n, (fn, _) in vs.items()}, rounds)
        base_ms, base_macs = ms['level0'], vs['level0'][1]
        for name, (_, macs) in vs.items():
            lat_ratio = ms[name] / base_ms
            mac_ratio = macs / base_macs
            records.append({
                'model': model.name, 'backend': backend, 'p': p, 'k': k,
                'variant': name, 'latency_ms': ms[name], 'macs': macs,
                'latency_ratio': lat_ratio, 'mac_ratio': mac_ratio,
                'efficiency': (1 - lat_ratio) / (1 - mac_ratio) if mac_ratio < 0.999 else None,
            })
    return records


def plot(records: list[dict[str, Any]], out: Path) -> Path:
    plt = pyplot()
    fig, ax = plt.subplots(figsize=(6, 4))
    for model, backend in sorted({(r['model'], r['backend']) for r in records}):
        deepest = max(r['p'] for r in records if r['model'] == model)
        rows = [r for r in records if r['backend'] == backend and r['k'] == 3
                and r['model'] == model and r['p'] == deepest
                and r['variant'].startswith(('level', 'mixed'))
                and not r['variant'].endswith(('_calls', '_bf16')) and 'halo' not in r['variant']]
        ax.plot([r['mac_ratio'] for r in rows], [r['latency_ratio'] for r in rows], 'o',
                label=f'{model} {deepest}, {backend}')
    ax.plot([0, 1], [0, 1], 'k--', lw=1, label='ideal (latency follows MACs)')
    ax.set_xlabel('MAC ratio to tiled level 0')
    ax.set_ylabel('latency ratio to tiled level 0')
    ax.set_title('tiled fronts, k = 3, paper halo')
    ax.grid(alpha=0.3)
    ax.legend(fontsize=8)
    return save(fig, out / 'bench_latency_vs_macs.png', dpi=120)


def main(argv: list[str] | None = None) -> int:
    args = list(sys.argv[1:] if argv is None else argv)
    if args and args[0] in COMMANDS:
        return importlib.import_module(COMMANDS[args[0]]).main(args[1:])
    return supernet_main(args[1:] if args[:1] == ['supernet'] else args)


def supernet_main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(prog='neulens-bench [supernet]', description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument('--out', type=Path, default=Path('runs/bench'))
    parser.add_argument('--models', default='resnet50,detector')
    parser.add_argument('--detector', default=DETECTOR,
                        help='checkpoint name or .pt path the detector model is timed on')
    parser.add_argument('--backends', default='torch,torchscript,onnxruntime',
                        help=f'of torch, torchscript, onnxruntime, {STATIC_ORT} (a session '
                        'per exact input shape), tensorrt')
    parser.add_argument('--rounds', type=int, default=15)
    parser.add_argument('--ks', default='2,3,4', help='tile grids')
    parser.add_argument('--ps', default='', help="split points ('' = every one of each model)")
    parser.add_argument('--quick', action='store_true',
                        help="k = 3, each model's deepest P, 3 rounds")
    parser.add_argument('--threads', type=int, default=0)
    parser.add_argument('--cache-dir', default='')
    args = parser.parse_args(argv)
    if args.threads:
        torch.set_num_threads(args.threads)
    try:
        models = bench_models(args.models.split(','), args.detector)
    except NeulensError as exc:
        print(f'neulens-bench: {exc}', file=sys.stderr)
        return 2
    if args.quick:  # each model's deepest split point only
        models = [replace(m, fronts=dict(list(m.fronts.items())[-1:])) for m in models]
        ks, ps, rounds = [3], None, 3
    else:
        ks, rounds = [int(k) for k in args.ks.split(',')], args.rounds
        ps = args.ps.split(',') if args.ps else None
    records = run(models, args.backends.split(','), ks, ps, rounds, args.cache_dir)
    args.out.mkdir(parents=True, exist_ok=True)
    info = {'threads': torch.get_num_threads(), 'rounds': rounds,
            'command': 'neulens-bench ' + ' '.join(argv)}
    (args.out / 'bench.json').write_text(json.dumps({'info': info, 'records': records},
                                                    indent=1))
    png = plot(records, args.out)
    for r in records:
        if r['k'] == 3 and r['p'] in ('layer2', 'layer3'):
            eff = '' if r['efficiency'] is None else f"  efficiency {r['efficiency']:.2f}"
            print(f"{r['model']:9s} {r['p']:7s} {r['backend']:12s} {r['variant']:22s} "
                  f"{r['latency_ms']:8.2f} ms  "
                  f"latency x{r['latency_ratio']:.2f}  MACs x{r['mac_ratio']:.2f}{eff}")
    print(f'json: {args.out / "bench.json"}\nplot: {png}')
    return 0


if __name__ == '__main__':
    raise SystemExit(main())
