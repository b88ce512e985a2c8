"""neulens-bench slo: does DEMUX keep its latency promises, and what does each policy cost?

    neulens-bench slo --out runs/slo                  # a few minutes on 2 cores
    neulens-bench slo --quick --out runs/slo_quick    # well under a minute, for tests

The held-out generated scenes (of the detector's preset, at its input size) run through the
real headset step (CGG + DEMUX, HeadsetGate) and the real edge step (the shipped or a given
detector and micro-flow executor, EdgeDetector) in this process, with no transport: the latency
compared with the SLO is the edge's measured compute (stitched front + back + decoding), the
quantity DEMUX predicts. Gate and DEMUX time are reported separately as overhead.

Sweep: latency SLOs are fractions of the measured compute of level 0 at the shipped (P, k)
(median over 12 frames, measured again just before each SLO point: the shared machine's speed
drifts during a run by more than the steps between the points). For every SLO, every frame runs
once under every policy, round robin (so machine noise hits all policies alike):
- cs:      the CGG's levels, raised by confidence stepping (the paper's CLG);
- uniform: the CGG's levels, all raised together;
- min:     the CGG's levels, the least confident tile raised first;
- image:   image-level dynamic width, no gate: one width for every tile;
- with --skip-early also cs_plain, uniform_plain, min_plain: the same CLG policies in the
  plain order (a kept tile skipped as soon as its turn comes, instead of after every kept tile
  has been narrowed), in the same round robin.
Each policy keeps its own online correction across the sweep, as a running gate node would.
A frame whose tiles DEMUX all skipped is dropped (nothing computed, no detections): drops are
counted apart, the SLO is judged on the computed frames and also strictly (a drop = a miss).
Per (policy, SLO): those fractions, mAP@0.5 against the generator's ground truth over all
frames (drops included), mean and p95 latency of the computed frames.

Contention: policy cs at one SLO, frames back to back; after a third of them CPU-burning
processes start (ended by PID after the second third, and bounded in time by themselves; by
default one per core, so the detector's thread has to share a core with one). The same frames
run three times: with DEMUX's machine-wide online correction, with one correction per (P, k)
(the first design), and without; the fraction of frames within the SLO is reported for each,
overall and while the burners ran.

Threads: one by default, as the pipeline's supernet node runs (OMP_NUM_THREADS=1 from the
launch helpers) and as the shipped profile was measured.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Iterator

import numpy as np
import torch
from tqdm import tqdm

from neulens_ros.control.demux import OnlineCorrection, SloConfig
from neulens_ros.eval.map import mean_ap
from neulens_ros.levels import LEVEL_SKIP
from neulens_ros.models.zoo import DETECTOR, GATE, detector_metadata
from neulens_ros.pipeline.edge import EdgeConfig, EdgeDetector, EdgeResult
from neulens_ros.pipeline.headset import PREDICTOR_FILE, HeadsetGate
from neulens_ros.plots import pyplot, save
from neulens_ros.supernet.detector import P_OPTIONS
from neulens_ros.train.data import DetectionSet, load_set
from neulens_ros.train.plan import detector_held_out_set

POLICIES = ('cs', 'uniform', 'min', 'image')
PLAIN = '_plain'  # a CLG policy run in the plain order: skip as soon as a tile's turn comes
CORRECTIONS = {'machine': 'machine-wide online correction',  # the contention run's variants
               'per_candidate': 'online correction per (P, k)',
               'none': 'no online correction'}
SHIPPED = ('layer2', 3)  # (P, k) of the level-0 reference
BURN = ('import sys, time\nend = time.monotonic() + float(sys.argv[1])\n'
        'while time.monotonic() < end:\n    pass\n')  # one busy core, ends by itself


def variants(plain_order: bool) -> tuple[str, ...]:
    """The policies the sweep runs round robin; with `plain_order` also each CLG policy in
    the plain order ('cs_plain', ...), so both orders meet the same frames and the same
    moments of the machine."""
    extra = tuple(p + PLAIN for p in POLICIES if p != 'image') if plain_order else ()
    return POLICIES + extra


@dataclass(frozen=True)
class FrameRun:
    """One frame under one policy and SLO."""

    latency_ms: float  # edge compute, measured
    predicted_ms: float
    fits: bool  # DEMUX predicted the SLO feasible
    overhead_ms: float  # gate + DEMUX
    demux_ms: float
    levels: tuple[int, ...]
    result: EdgeResult

    @property
    def dropped(self) -> bool:
        """Every tile skipped: nothing computed or sent, no detections."""
        return all(lv == LEVEL_SKIP for lv in self.levels)


def slo_for(name: str, latency_ms: float = 0.0) -> SloConfig:
    """The SloConfig of a sweep variant ('cs', 'cs_plain', ...)."""
    return SloConfig(latency_ms=latency_ms, policy=name.removesuffix(PLAIN),
                     skip_last=not name.endswith(PLAIN))


class Bench:
    """A gate, a detector and one HeadsetGate per policy on one data set."""

    def __init__(self, data: DetectionSet, backend: str, predictor: Path = PREDICTOR_FILE,
                 threads: int = 0, margin: float = 0.0, names: tuple[str, ...] = POLICIES,
                 checkpoints: tuple[str, str] = (DETECTOR, GATE)) -> None:
        self.data = data
        self.predictor = predictor
        self.margin = margin
        self.detector, self.gate_checkpoint = checkpoints
        self.edge = EdgeDetector.load(EdgeConfig(checkpoint=self.detector, backend=backend,
                                                 score_threshold=0.05, num_threads=threads))
        self.num_classes = self.edge.model.config.num_classes  # the checkpoint's classes
        self.gates = {name: self.gate(slo_for(name)) for name in names}

    def gate(self, slo: SloConfig, correction: str = 'machine') -> HeadsetGate:
        gate = HeadsetGate.load(slo, self.gate_checkpoint, self.detector, self.predictor)
        gate.demux.correction = OnlineCorrection(margin=self.margin,
                                                 per_candidate=correction == 'per_candidate')
        return gate

    def run(self, gate: HeadsetGate, i: int, correct: bool = True) -> FrameRun:
        frame = gate.process(self.data.images[i], stamp_ns=i, frame_id='camera')
        d = frame.decision
        result = self.edge.run(d, frame.tiles)
        if correct:
            gate.observe_compute(d, result.compute_ms)
        return FrameRun(result.compute_ms, d.predicted_latency_ms, d.fits_slo,
                        d.gate_time_ms + d.demux_time_ms, d.demux_time_ms, d.levels, result)

    def level0_ms(self, frames: int) -> float:
        """Median measured compute of level 0 at the shipped (P, k)."""
        gate = self.gates['cs']
        gate.set_slo(SloConfig(policy='fixed', fixed_level=0, p_options=(SHIPPED[0],),
                               k_options=(SHIPPED[1],)))
        times = [self.run(gate, i % len(self.data), correct=False).latency_ms
                 for i in range(frames)]
        return float(np.median(times[1:]))

    def score(self, runs: list[FrameRun]) -> float:
        """mAP@0.5 of the frames of `runs` (frame i = data image i)."""
        n = len(runs)
        return mean_ap([r.result.boxes for r in runs], [r.result.scores for r in runs],
                       [r.result.class_ids for r in runs], self.data.boxes[:n],
                       self.data.classes[:n], num_classes=self.num_classes)


def summarize(runs: list[FrameRun], slo_ms: float) -> dict[str, Any]:
    """Frames DEMUX dropped (every tile skipped: nothing computed, no detections) are counted
    apart; the SLO is judged on the computed frames, and also strictly (a drop = a miss)."""
    lat = np.array([r.latency_ms for r in runs])
    computed = np.array([not r.dropped for r in runs])
    fits = np.array([r.fits for r in runs]) & computed
    met = (lat <= slo_ms) & computed
    return {
        'frames': len(runs),
        'dropped_fraction': float(1.0 - computed.mean()),
        'met_fraction': float(met.sum() / computed.sum()) if computed.any() else None,
        'met_fraction_strict': float(met.mean()),
        'feasible_frames': int(fits.sum()),
        'met_fraction_feasible': float(met[fits].mean()) if fits.any() else None,
        'latency_ms_mean': float(lat[computed].mean()) if computed.any() else 0.0,
        'latency_ms_p95': float(np.percentile(lat[computed], 95)) if computed.any() else 0.0,
        'prediction_error_mean': float(np.mean([abs(r.predicted_ms - r.latency_ms)
                                                / r.latency_ms for r, c in zip(runs, computed,
                                                                              strict=True)
                                                if c and r.latency_ms > 0] or [0.0])),
        'overhead_ms_median': float(np.median([r.overhead_ms for r in runs])),
        'demux_ms_median': float(np.median([r.demux_ms for r in runs])),
        'skipped_tile_fraction': float(np.mean([np.mean(np.array(r.levels) == LEVEL_SKIP)
                                                for r in runs])),
    }


def sweep(bench: Bench, fractions: list[float], frames: int, reference_frames: int = 12
          ) -> list[dict[str, Any]]:
    """Every policy at every SLO fraction; each fraction is of level 0 measured again just
    before its point (`reference_frames` frames), so the machine's speed drifting during the
    run does not turn a loose SLO into a tight one or the other way round."""
    rows = []
    bar = tqdm(total=len(fractions) * frames * len(bench.gates), desc='SLO sweep',
               unit='run', leave=False)
    for fraction in fractions:
        level0_ms = bench.level0_ms(reference_frames)
        slo = fraction * level0_ms
        for name, gate in bench.gates.items():
            gate.set_slo(slo_for(name, slo))
        runs: dict[str, list[FrameRun]] = {name: [] for name in bench.gates}
        for i in range(frames):
            for name, gate in bench.gates.items():
                runs[name].append(bench.run(gate, i))
                bar.update()
        for name in bench.gates:
            rows.append({'policy': name, 'slo_fraction': fraction, 'slo_ms': slo,
                         'level0_ms': level0_ms,
                         'map50': bench.score(runs[name]), **summarize(runs[name], slo)})
    bar.close()
    return rows


class Burners:
    """CPU-burning processes, each ending by itself after `seconds` and ended by PID on
    stop()."""

    def __init__(self, count: int, seconds: float) -> None:
        self.procs = [subprocess.Popen([sys.executable, '-c', BURN, str(seconds)])
                      for _ in range(count)]

    def stop(self) -> None:
        for p in self.procs:
            if p.poll() is None:
                p.terminate()
        for p in self.procs:
            try:
                p.wait(timeout=5)
            except subprocess.TimeoutExpired:
                p.kill()
                p.wait()


def contention(bench: Bench, slo_ms: float, frames: int, burners: int, correction: str
               ) -> dict[str, Any]:
    """cs at `slo_ms` with `correction` (one of CORRECTIONS), burners from frame frames/3 to
    2 frames/3."""
    gate = bench.gate(slo_for('cs', slo_ms), correction)
    correct = correction != 'none'
    start, end = frames // 3, 2 * frames // 3
    runs, busy = [], None
    try:
        for i in tqdm(range(frames), desc=f'contention ({correction} correction)',
                      unit='frame', leave=False):
            if i == start:
                busy = Burners(burners, seconds=120.0)
                time.sleep(0.2)  # the burners are running before the next frame
            if i == end and busy:
                busy.stop()
                busy = None
            runs.append(bench.run(gate, i % len(bench.data), correct))
    finally:
        if busy:
            busy.stop()
    during = summarize(runs[start:end], slo_ms)
    return {'correction': correction, 'slo_ms': slo_ms, 'burners': burners,
            'contention_frames': [start, end],
            'latency_ms': [round(r.latency_ms, 2) for r in runs],
            'predicted_ms': [round(r.predicted_ms, 2) for r in runs],  # x the correction
            'dropped': [r.dropped for r in runs],
            **summarize(runs, slo_ms),
            'met_fraction_during': during['met_fraction'],
            'dropped_fraction_during': during['dropped_fraction'],
            'skipped_tile_fraction_during': during['skipped_tile_fraction']}


def plot(rows: list[dict[str, Any]], cont: list[dict[str, Any]], out: Path) -> list[Path]:
    plt = pyplot()
    fig, axes = plt.subplots(1, 3, figsize=(13, 3.6))
    # x: the SLO as a fraction of level 0, which is measured again before every point
    for name in dict.fromkeys(r['policy'] for r in rows):
        mine = sorted((r for r in rows if r['policy'] == name), key=lambda r: r['slo_fraction'])
        x = [r['slo_fraction'] for r in mine]
        style = '--' if name.endswith(PLAIN) else '-'
        line, = axes[0].plot(x, [r['met_fraction'] or 0.0 for r in mine], 'o' + style,
                             label=name)
        axes[0].plot(x, [r['dropped_fraction'] for r in mine], 'x:', color=line.get_color())
        axes[1].plot(x, [r['map50'] for r in mine], 'o' + style, label=name)
        axes[2].plot(x, [r['latency_ms_mean'] / r['level0_ms'] for r in mine], 'o' + style,
                     label=name)
    fractions = sorted({r['slo_fraction'] for r in rows})
    axes[2].plot(fractions, fractions, 'k--', lw=1, label='SLO')
    for ax, title in zip(axes, ('computed frames within the SLO (o)\nframes dropped (x)',
                                'mAP@0.5 (drops count)',
                                'mean latency of computed frames\n(x level 0)'), strict=True):
        ax.set_xlabel('latency SLO (x level 0)')
        ax.set_title(title)
        ax.grid(alpha=0.3)
    axes[0].axhline(0.95, color='grey', lw=0.8, ls=':')
    axes[1].legend(fontsize=8)
    paths = [save(fig, out / 'slo_sweep.png', dpi=110)]
    if cont:
        fig, ax = plt.subplots(figsize=(9, 3.4))
        for run in cont:
            label = (f'{CORRECTIONS[run["correction"]]} '
                     f'({percent(run["met_fraction"])} within SLO, '
                     f'{percent(run["dropped_fraction"])} dropped)')
            ax.plot(run['latency_ms'], lw=1, label=label)
        start, end = cont[0]['contention_frames']
        ax.axvspan(start, end, color='red', alpha=0.08, label='CPU burners running')
        ax.axhline(cont[0]['slo_ms'], color='k', ls='--', lw=1, label='SLO')
        ax.set_xlabel('frame')
        ax.set_ylabel('edge compute (ms)')
        ax.legend(fontsize=8)
        ax.grid(alpha=0.3)
        paths.append(save(fig, out / 'slo_contention.png', dpi=110))
    return paths


def percent(value: float | None) -> str:
    return '-' if value is None else f'{100 * value:.0f}%'


def frange(text: str) -> list[float]:
    values = [float(v) for v in text.split(',') if v.strip()]
    if not values or min(values) <= 0:
        raise argparse.ArgumentTypeError('give positive fractions, e.g. 0.4,0.6,0.8')
    return values


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog='neulens-bench slo', description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument('--out', type=Path, default=Path('runs/slo'))
    parser.add_argument('--frames', type=int, default=100, help='held-out scenes per point')
    parser.add_argument('--fractions', type=frange, default=frange('0.7,0.8,0.9,1.0,1.1,1.25'),
                        help='latency SLOs as fractions of level 0 at the shipped (P, k)')
    parser.add_argument('--contention-frames', type=int, default=150)
    parser.add_argument('--contention-fraction', type=float, default=1.2)
    parser.add_argument('--burners', type=int, default=os.cpu_count() or 2,
                        help='CPU-burning processes during the contention run (default: one '
                        'per core)')
    parser.add_argument('--backend', default='torch')
    parser.add_argument('--threads', type=int, default=1,
                        help='torch threads (default 1, as the supernet node runs; 0 = '
                        "torch's default)")
    parser.add_argument('--margin', type=float, default=0.0,
                        help='deviations of the online correction DEMUX adds (0 = the mean)')
    parser.add_argument('--quick', action='store_true',
                        help='8 frames, two SLOs, 24 contention frames')
    parser.add_argument('--skip-early', action='store_true',
                        help='also run cs, uniform and min in the plain CLG order (a kept '
                             'tile skipped as soon as its turn comes), as cs_plain, ...')
    parser.add_argument('--predictor', type=Path, default=None,
                        help='DEMUX predictor from neulens-profile (default: the shipped one)')
    parser.add_argument('--detector', default=DETECTOR, help='detector checkpoint')
    parser.add_argument('--gate', default=GATE, help='gate checkpoint')
    args = parser.parse_args(argv)
    if args.quick:
        args.frames, args.fractions, args.contention_frames = 8, [0.8, 1.2], 24
    args.out.mkdir(parents=True, exist_ok=True)
    spec = detector_held_out_set(detector_metadata(args.detector), max(args.frames, 8))
    data = load_set(spec, args.out / 'cache')
    bench = Bench(data, args.backend, args.predictor or PREDICTOR_FILE, args.threads,
                  args.margin, variants(args.skip_early), (args.detector, args.gate))
    level0 = bench.level0_ms(12)
    print(f'neulens-bench slo: level 0 at P={SHIPPED[0]}, k={SHIPPED[1]}: {level0:.1f} ms '
          f'({bench.edge.describe()})', flush=True)
    rows = sweep(bench, args.fractions, min(args.frames, len(data)))
    # the contention SLO from level 0 measured just before it, as every sweep point's
    contention_level0 = bench.level0_ms(12) if args.contention_frames else level0
    slo = args.contention_fraction * contention_level0
    cont = [contention(bench, slo, args.contention_frames, args.burners, correction)
            for correction in CORRECTIONS] if args.contention_frames else []
    result = {'info': {'command': 'neulens-bench slo ' + ' '.join(argv or sys.argv[2:]),
                       'level0_ms': level0, 'contention_level0_ms': contention_level0,
                       'shipped': list(SHIPPED), 'margin': args.margin,
                       'threads': torch.get_num_threads(), 'backend': bench.edge.backend_name,
                       'p_options': list(P_OPTIONS), 'detector': args.detector,
                       'gate': args.gate, 'preset': spec.preset},
              'sweep': rows, 'contention': cont}
    (args.out / 'slo.json').write_text(json.dumps(result, indent=1))
    paths = plot(rows, cont, args.out)
    for line in table(rows):
        print(line)
    for run in cont:
        print(f'contention, {CORRECTIONS[run["correction"]]}: '
              f'{percent(run["met_fraction"])} of computed frames within {run["slo_ms"]:.1f} ms '
              f'({percent(run["met_fraction_during"])} while {run["burners"]} burner(s) ran; '
              f'{percent(run["dropped_fraction"])} of frames dropped)')
    print(f'json: {args.out / "slo.json"}\nplots: {", ".join(str(p) for p in paths)}')
    return 0


def table(rows: list[dict[str, Any]]) -> Iterator[str]:
    yield (f'{"policy":8s} {"SLO ms":>7s} {"within":>7s} {"dropped":>8s} {"strict":>7s} '
           f'{"mAP@0.5":>8s} {"mean ms":>8s} {"p95 ms":>7s} {"gate+demux":>10s}')
    for r in rows:
        met = '-' if r['met_fraction'] is None else f"{100 * r['met_fraction']:.0f}%"
        yield (f'{r["policy"]:8s} {r["slo_ms"]:7.1f} {met:>7s} '
               f'{100 * r["dropped_fraction"]:7.0f}% {100 * r["met_fraction_strict"]:6.0f}% '
               f'{r["map50"]:8.3f} {r["latency_ms_mean"]:8.1f} {r["latency_ms_p95"]:7.1f} '
               f'{r["overhead_ms_median"]:8.2f}ms')


if __name__ == '__main__':
    raise SystemExit(main())
