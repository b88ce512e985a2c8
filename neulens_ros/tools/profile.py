"""neulens-profile: measure the detector's front and back on this machine, fit the DEMUX
predictors and report their held-out error.

    neulens-profile --out runs/profile                  # the default (hard) detector:
                                                        # predictor_cpu_hard.json + profile.json
    neulens-profile --samples 30 --repeats 25 --install # also replace the shipped profile
    neulens-profile --detector neulens_detector --install  # the easy one: predictor_cpu.json
    neulens-profile --backend torchscript --out runs/profile_ts  # for a TorchScript edge

Half of the random level histograms fit the predictors, the other half measure their error.
One torch thread by default, as the supernet node runs (OMP_NUM_THREADS=1 from the launch
helpers).
"""

from __future__ import annotations

import argparse
import json
import platform
from pathlib import Path

import numpy as np
import torch

from neulens_ros.control.accuracy import AccuracyTable
from neulens_ros.control.demux import Demux, SloConfig
from neulens_ros.control.link_estimator import LinkState
from neulens_ros.control.predictor import Predictor, held_out_error
from neulens_ros.control.profile import profile_back, profile_front
from neulens_ros.errors import NeulensError
from neulens_ros.levels import NUM_LEVELS, TILE_GRIDS
from neulens_ros.models.registry import WEIGHTS_DIR
from neulens_ros.models.zoo import DETECTOR, detector_halo, load_detector, predictor_file
from neulens_ros.runtime.backends import BACKENDS, make_runners
from neulens_ros.supernet.detector import P_OPTIONS, TileDetector
from neulens_ros.supernet.tiling import check_halo, tile_grid, window_chain

def decision_time(model: TileDetector, predictor: Predictor, halo: str, frames: int = 200
                  ) -> dict[str, float]:
    """DEMUX decision time over every (P, k) with CLG loops, on random gate outputs under an
    SLO halfway between the cheapest and the dearest prediction (so CLG has work to do)."""
    rng = np.random.default_rng(1)
    lat = [predictor.predict(p, k, np.bincount(np.full(k * k, lv), minlength=5))[0]
           for p, k in predictor.candidates() for lv in (0, 4)]
    slo = SloConfig(latency_ms=(min(lat) + max(lat)) / 2)
    chains = {p: window_chain(model.front(p)) for p in P_OPTIONS}
    cfg = model.config
    pixels = {}
    for p, k in predictor.candidates():
        rects = tile_grid(chains[p], cfg.input_width, cfg.input_height, k, halo).in_rects
        pixels[(p, k)] = (rects[:, 2] - rects[:, 0]) * (rects[:, 3] - rects[:, 1])
    demux = Demux(predictor, AccuracyTable(), slo, pixels, bytes_per_pixel=0.3)
    link = LinkState(20.0, 5.0)
    times = []
    for _ in range(frames):
        levels = {k: rng.integers(0, 4, k * k).tolist() for k in TILE_GRIDS}
        conf = {k: rng.random(k * k).tolist() for k in TILE_GRIDS}
        times.append(demux.decide(levels, conf, link).decision_time_ms)
    return {'median': float(np.median(times)), 'p90': float(np.percentile(times, 90))}


def main(argv: list[str] | None = None) -> int:
    from neulens_ros.progress import progress_bar
    parser = argparse.ArgumentParser(prog='neulens-profile', description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument('--detector', default=DETECTOR)
    parser.add_argument('--out', type=Path, default=Path('runs/profile'))
    parser.add_argument('--samples', type=int, default=30, help='histograms per (P, k)')
    parser.add_argument('--repeats', type=int, default=5, help='timed runs per histogram')
    parser.add_argument('--threads', type=int, default=1,
                        help="torch threads (default 1, as the supernet node runs; 0 = torch's "
                             'default)')
    parser.add_argument('--halo', default=None,
                        help="the tiles' halo (default: the detector's, its metadata's)")
    parser.add_argument('--backend', default='torch', choices=BACKENDS,
                        help="the supernet node's backend to profile (the fronts; the back "
                        'runs eager)')
    parser.add_argument('--static-batches', action='store_true',
                        help="onnxruntime: a session per batch size (supernet_node's "
                        'static_batches)')
    parser.add_argument('--cache-dir', default='', help="ONNX cache ('' = the user cache)")
    parser.add_argument('--install', action='store_true',
                        help="also replace the shipped profile of the detector's architecture "
                             '(models/names.py PREDICTORS)')
    args = parser.parse_args(argv)
    if args.static_batches and args.backend != 'onnxruntime':
        parser.error('--static-batches needs --backend onnxruntime')
    if args.samples < NUM_LEVELS or args.repeats < 1:
        # half the histograms fit, with the NUM_LEVELS uniform anchors: 2 * NUM_LEVELS rows
        parser.error(f'--samples must be at least {NUM_LEVELS} (the predictor fits half of '
                     f'them beside the {NUM_LEVELS} uniform levels) and --repeats at least 1, '
                     f'got {args.samples} and {args.repeats}')
    if args.threads:
        torch.set_num_threads(args.threads)
    try:
        model, meta = load_detector(args.detector)
    except NeulensError as exc:
        parser.error(str(exc))
    try:
        halo = args.halo or detector_halo(meta)
        halo = check_halo(halo)
    except NeulensError as exc:
        parser.error(str(exc))
    backend, runners = make_runners(model, args.backend, 'fp32', args.cache_dir, 16,
                                    args.static_batches, halo=halo)
    rng = np.random.default_rng(0)
    fit, test = [], []
    jobs = [(p, k) for p in P_OPTIONS for k in TILE_GRIDS]
    for p, k in progress_bar(jobs, desc='profiling', unit='(P,k)'):
        records = list(profile_front(model, p, k, halo, 2 * args.samples, args.repeats,
                                     rng, runners.get(p)))
        fit += records[0::2] + records[:5]  # the uniform anchors always fit
        test += records[1::2]
    for p in P_OPTIONS:
        back = profile_back(model, p, args.repeats * 3)
        fit.append(back)
        test.append(back)
    info = {'machine': platform.machine(), 'processor': platform.processor(),
            'threads': torch.get_num_threads(), 'backend': backend, 'precision': 'fp32',
            'static_batches': args.static_batches,
            'model_sha256': meta['sha256'], 'halo': halo}
    predictor = Predictor.fit(fit, meta=info)
    error = held_out_error(predictor, test)
    error['demux_decision_ms'] = decision_time(model, predictor, halo)
    args.out.mkdir(parents=True, exist_ok=True)
    name = predictor_file(args.detector).name  # the preset's profile name
    predictor.save(args.out / name)
    records = [r.__dict__ for r in fit + test]
    (args.out / 'profile.json').write_text(json.dumps({'info': info, 'held_out': error,
                                                       'records': records}, indent=1))
    if args.install:
        predictor.save(WEIGHTS_DIR / name)
    print(json.dumps({'held_out_error': error, **info}, indent=1))
    print(f'predictor: {args.out / name}')
    return 0


if __name__ == '__main__':
    raise SystemExit(main())
