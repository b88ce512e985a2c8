"""neulens-bench slo: does DEMUX keep its latency promises, and what does each policy cost?

    neulens-bench slo --out runs/slo                  # a few minutes on 2 cores
    neulens-bench slo --quick --out runs/slo_quick    # about a minute, for tests
    neulens-bench slo --frames 0 --out runs/slo_contention   # only the contention run

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

Contention (paper 7.5: a co-running DNN inference job on the same edge device): policy cs at
one SLO (1.2x the profile's level 0, the idle machine's, so every run has the same SLO;
`--contention-ref measured`: level 0 measured just before), frames back to back; from a
third to two thirds of the frames a separate process runs the detector untiled at full width
on one thread in a loop with on/off phases (`--corunner-on/--corunner-off` seconds;
tools/corunner.py), started and ended by PID and bounded in time by itself. `--contention
burner` is the older load: one CPU-burning process per core (`--burners`). The correction
variants (CORRECTIONS: DEMUX's shipped correction, the paper's EWMA mean, one EWMA per (P,
k), none) run interleaved frame by frame (the order rotating every frame), each with its own
gate, so all of them meet the same frames and the same load. Each frame is judged at the
speed measured for it (control/feasibility.py): its slowdown is measured / the profile's
prediction of the plan that ran (a dropped frame takes the slowdown measured nearest in
time), and it is feasible when the cheapest plan keeping every tile the gate kept (each at
the narrowest width, any (P, k)) meets the SLO at that slowdown. Reported per variant,
overall, during the load and in its on phases: frames within the SLO among the feasible ones
(a feasible frame DEMUX dropped is a miss; a frame the gate itself skipped entirely is
within), within overall, the infeasible share, drops, the mean level of the computed tiles,
the profile's compute of the chosen plans (the work chosen) and the gain over no correction.
`--frames 0` runs only the contention; `--first-seed` draws another held-out range (tune
there, report on the default range).

Threads: one by default, as the pipeline's supernet node runs (OMP_NUM_THREADS=1 from the
launch helpers) and as the shipped profile was measured.
"""

from __future__ import annotations

import argparse
import json
import os
import select
import subprocess
import sys
import time
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any, Iterator

import numpy as np
import torch

from neulens_ros.control.demux import OnlineCorrection, SloConfig
from neulens_ros.control.feasibility import feasible, nearest_fill, slowdown
from neulens_ros.errors import ConfigError, NeulensError
from neulens_ros.eval.map import mean_ap
from neulens_ros.levels import LEVEL_SKIP
from neulens_ros.models.zoo import DETECTOR, GATE, detector_metadata
from neulens_ros.pipeline.edge import EdgeConfig, EdgeDetector, EdgeResult
from neulens_ros.pipeline.headset import HeadsetGate
from neulens_ros.plots import pyplot, save
from neulens_ros.progress import progress_bar
from neulens_ros.supernet.detector import P_OPTIONS
from neulens_ros.tools.corunner import DutyCycle
from neulens_ros.train.data import DetectionSet, load_set
from neulens_ros.train.plan import VAL_SEED, detector_held_out_set
from neulens_ros.tools.command import recorded_command

POLICIES = ('cs', 'uniform', 'min', 'image')
PLAIN = '_plain'  # a CLG policy run in the plain order: skip as soon as a tile's turn comes
CORRECTIONS = {  # the contention run's variants, interleaved frame by frame
    'shipped': "DEMUX's correction (OnlineCorrection's defaults, or as given)",
    'ewma': 'EWMA mean, machine-wide (the paper; the previous default)',
    'per_candidate': 'EWMA mean per (P, k) (the first design)',
    'none': 'no online correction'}
PAPER_EWMA = {'alpha': 0.2, 'alpha_up': 0.0, 'quantile': 0.0}
LOADS = ('dnn', 'burner')
CONTENTION_LIMIT_S = 300.0  # the load process ends by itself after this, if not stopped
READY_TIMEOUT_S = 120.0  # for the co-running process to load its model
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
    profile_ms: float = 0.0  # the profile's compute of the plan that ran (0 if dropped)
    floor_ms: float = 0.0  # the profile's compute of the cheapest plan keeping every kept tile
    started: float = 0.0  # time.monotonic() when the edge began the frame, s

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

    def __init__(self, data: DetectionSet, backend: str, predictor: Path | None = None,
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
        for warning in {g.calibration_warning for g in self.gates.values()} - {None}:
            print(f'neulens-bench slo: warning: gate {self.gate_checkpoint}: {warning}',
                  file=sys.stderr)

    def gate(self, slo: SloConfig) -> HeadsetGate:
        gate = HeadsetGate.load(slo, self.gate_checkpoint, self.detector, self.predictor)
        if self.margin:
            gate.demux.correction = OnlineCorrection(**PAPER_EWMA, margin=self.margin)
        return gate

    def run(self, gate: HeadsetGate, i: int, correct: bool = True) -> FrameRun:
        frame = gate.process(self.data.images[i], stamp_ns=i, frame_id='camera')
        d = frame.decision
        demux = gate.demux
        started = time.monotonic()
        result = self.edge.run(d, frame.tiles)
        if correct:
            gate.observe_compute(d, result.compute_ms)
        profile_ms = (demux.predictor.predict(P_OPTIONS[d.p_index], d.k,
                                              d.level_histogram())[0] if d.sent_tiles else 0.0)
        return FrameRun(result.compute_ms, d.predicted_latency_ms, d.fits_slo,
                        d.gate_time_ms + d.demux_time_ms, d.demux_time_ms, d.levels, result,
                        profile_ms, demux.last.floor_ms, started)

    def level0_ms(self, frames: int) -> float:
        """Median measured compute of level 0 at the shipped (P, k)."""
        gate = self.gates['cs']
        gate.set_slo(SloConfig(policy='fixed', fixed_level=0, p_options=(SHIPPED[0],),
                               k_options=(SHIPPED[1],)))
        times = [self.run(gate, i % len(self.data), correct=False).latency_ms
                 for i in range(frames)]
        return float(np.median(times[1:]))

    def profile_level0_ms(self) -> float:
        """The profile's compute of level 0 at the shipped (P, k): the idle machine's."""
        k = SHIPPED[1]
        return float(self.gates['cs'].demux.predictor.predict(SHIPPED[0], k,
                                                              [k * k, 0, 0, 0, 0])[0])

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
        'predicted_fit_frames': int(fits.sum()),  # DEMUX's own prediction, not feasibility
        'met_fraction_predicted_fit': float(met[fits].mean()) if fits.any() else None,
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
    bar = progress_bar(total=len(fractions) * frames * len(bench.gates), desc='SLO sweep',
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


def stop_by_pid(procs: list[subprocess.Popen]) -> None:
    """Terminate our own child processes (by their PID), then kill any that linger."""
    for p in procs:
        if p.poll() is None:
            p.terminate()
    for p in procs:
        try:
            p.wait(timeout=5)
        except subprocess.TimeoutExpired:
            p.kill()
            p.wait()


class Burners:
    """The old contention ('burner'): CPU-burning processes, each ending by itself after
    `seconds`, ended by PID on stop(); the load is on from start to stop."""

    def __init__(self, count: int, seconds: float) -> None:
        self.procs = [subprocess.Popen([sys.executable, '-c', BURN, str(seconds)])
                      for _ in range(count)]
        time.sleep(0.2)  # the burners are running before the next frame

    def describe(self) -> str:
        return f'{len(self.procs)} CPU burner(s)'

    def active(self, _t: float) -> bool:
        return True

    def stop(self) -> None:
        stop_by_pid(self.procs)


class CoRunner:
    """Contention as the paper measures it ('dnn'): a co-running DNN inference process on
    the same machine (tools/corunner.py: the detector untiled at full width, `threads`
    thread(s), on/off phases of `cycle`), ending by itself after `seconds` and ended by PID
    on stop()."""

    def __init__(self, detector: str, cycle: DutyCycle, seconds: float, threads: int) -> None:
        self.cycle = cycle
        self.threads = threads
        self.proc = subprocess.Popen(
            [sys.executable, '-m', 'neulens_ros.tools.corunner', '--seconds', str(seconds),
             '--on', str(cycle.on_s), '--off', str(cycle.off_s), '--threads', str(threads),
             '--detector', detector], stdout=subprocess.PIPE, text=True)
        ready, _, _ = select.select([self.proc.stdout], [], [], READY_TIMEOUT_S)
        line = self.proc.stdout.readline() if ready else ''
        if not line.startswith('ready '):
            self.stop()
            raise NeulensError(f'the co-running DNN process did not start within '
                               f'{READY_TIMEOUT_S:.0f} s (said {line.strip()!r}); run python '
                               f'-m neulens_ros.tools.corunner --seconds 5 to see why')
        self.t0 = float(line.split()[1])  # time.monotonic() of its first on phase

    def describe(self) -> str:
        return (f'co-running DNN process (detector, full width, {self.threads} thread(s), '
                f'{self.cycle.on_s:g} s on / {self.cycle.off_s:g} s off)')

    def active(self, t: float) -> bool:
        """Whether its inference loop was in an on phase at time.monotonic() `t` (and it has
        not ended by itself)."""
        return self.proc.poll() is None and self.cycle.is_on(t - self.t0)

    def stop(self) -> None:
        stop_by_pid([self.proc])
        self.proc.stdout.close()


@dataclass(frozen=True)
class Load:
    """How the contention run loads the machine: `kind` 'dnn' (CoRunner) or 'burner'."""

    kind: str = 'dnn'
    burners: int = 2
    cycle: DutyCycle = DutyCycle(1.5, 1.0)
    threads: int = 1
    detector: str = DETECTOR

    def __post_init__(self) -> None:
        if self.kind not in LOADS:
            raise ConfigError(f'contention {self.kind!r} is not one of {LOADS}')
        if self.burners < 1 or self.threads < 1:
            raise ConfigError('the contention needs >= 1 burner and >= 1 co-runner thread')

    def start(self, seconds: float) -> Burners | CoRunner:
        if self.kind == 'burner':
            return Burners(self.burners, seconds)
        return CoRunner(self.detector, self.cycle, seconds, self.threads)


def corrections(shipped: OnlineCorrection) -> dict[str, OnlineCorrection | None]:
    """The contention run's variants (CORRECTIONS), fresh: `shipped` as configured, the
    paper's EWMA machine-wide and per (P, k), and none."""
    return {'shipped': replace(shipped, ratios={}, deviations={}, errors={}),
            'ewma': OnlineCorrection(**PAPER_EWMA),
            'per_candidate': OnlineCorrection(**PAPER_EWMA, per_candidate=True),
            'none': None}


def contention(bench: Bench, slo_ms: float, frames: int, load: Load,
               variants: dict[str, OnlineCorrection | None]) -> dict[str, Any]:
    """cs at `slo_ms` under every correction of `variants` (None = no correction), each with
    its own gate, interleaved frame by frame (the order rotating every frame), the load on
    from frame frames/3 to 2 frames/3."""
    names = tuple(variants)
    gates = {name: bench.gate(slo_for('cs', slo_ms)) for name in names}
    for name, gate in gates.items():
        gate.demux.correction = variants[name] or OnlineCorrection()  # never updated if None
    start, end = frames // 3, 2 * frames // 3
    runs: dict[str, list[FrameRun]] = {name: [] for name in names}
    on: dict[str, list[bool]] = {name: [] for name in names}
    job = None
    try:
        for i in progress_bar(range(frames), desc='contention', unit='frame', leave=False):
            if i == start:
                job = load.start(seconds=CONTENTION_LIMIT_S)
                described = job.describe()
            if i == end and job:
                job.stop()
                job = None
            for j in range(len(names)):
                name = names[(i + j) % len(names)]
                run = bench.run(gates[name], i % len(bench.data),
                                correct=variants[name] is not None)
                runs[name].append(run)
                on[name].append(job is not None and job.active(run.started))
    finally:
        if job:
            job.stop()
    slowdowns = measured_slowdowns(runs)
    out = {name: {**contention_run(runs[name], slowdowns[name], on[name], slo_ms, start, end),
                  'map50': bench.score(runs[name])} for name in names}
    base = next((out[name] for name in names if variants[name] is None), None)
    if base:
        for v in out.values():
            v['gain_feasible'] = gain(v['within_feasible'], base['within_feasible'])
            v['gain_feasible_during'] = gain(v['during']['within_feasible'],
                                             base['during']['within_feasible'])
    return {'slo_ms': slo_ms, 'load': described, 'contention_frames': [start, end],
            'variants': out}


def gain(value: float | None, base: float | None) -> float | None:
    return None if value is None or base is None else value - base


def measured_slowdowns(runs: dict[str, list[FrameRun]]) -> dict[str, list[float]]:
    """Per variant and frame, the slowdown against the profile measured on that frame, or on
    the computed frame of any variant nearest in time where it was dropped."""
    flat = [(name, r) for name, rs in runs.items() for r in rs]
    filled = iter(nearest_fill([r.started for _, r in flat],
                               [None if r.dropped else slowdown(r.latency_ms, r.profile_ms)
                                for _, r in flat]))
    return {name: [next(filled) for _ in rs] for name, rs in runs.items()}


def contention_run(runs: list[FrameRun], slowdowns: list[float], on: list[bool],
                   slo_ms: float, start: int, end: int) -> dict[str, Any]:
    """The per-frame trace and the scores of one correction variant, overall and during the
    load (frames start..end)."""
    within = [(not r.dropped and r.latency_ms <= slo_ms) or (r.dropped and r.fits)
              for r in runs]  # a frame the gate itself skipped entirely costs nothing
    ok = [feasible(r.floor_ms, s, slo_ms) for r, s in zip(runs, slowdowns, strict=True)]
    return {'latency_ms': [round(r.latency_ms, 2) for r in runs],
            'predicted_ms': [round(r.predicted_ms, 2) for r in runs],  # x the correction
            'slowdown': [round(s, 3) for s in slowdowns],
            'floor_ms': [round(r.floor_ms, 2) for r in runs],
            'dropped': [r.dropped for r in runs], 'feasible': ok, 'met': within,
            'load_on': on,
            **summarize(runs, slo_ms), **scores(runs, slowdowns, within, ok),
            'during': scores(runs[start:end], slowdowns[start:end], within[start:end],
                             ok[start:end]),
            'load_on_phase': scores(*(
                [x for x, flag in zip(seq, on, strict=True) if flag]
                for seq in (runs, slowdowns, within, ok)))}


def scores(runs: list[FrameRun], slowdowns: list[float], within: list[bool],
           ok: list[bool]) -> dict[str, Any]:
    """Frames within the SLO among the feasible ones (a dropped feasible frame is a miss),
    overall (strict), the infeasible share, and the work DEMUX chose."""
    computed = [r for r in runs if not r.dropped]
    kept = [lv for r in computed for lv in r.levels if lv != LEVEL_SKIP]
    hits = [w for w, f in zip(within, ok, strict=True) if f]
    return {'frames': len(runs),
            'within_feasible': float(np.mean(hits)) if hits else None,
            'within': float(np.mean(within)) if within else None,
            'infeasible_fraction': float(1 - np.mean(ok)) if ok else None,
            'mean_level': float(np.mean(kept)) if kept else None,  # of computed tiles
            'kept_tile_fraction': (float(np.mean([lv != LEVEL_SKIP for r in runs
                                                  for lv in r.levels])) if runs else None),
            # the profile's (idle) compute of the chosen plans: the work DEMUX chose
            'plan_ms_mean': float(np.mean([r.profile_ms for r in computed])) if computed
            else None,
            'slowdown_p10_p50_p90': ([float(v) for v in np.percentile(slowdowns, [10, 50, 90])]
                                     if slowdowns else None)}


def plot_sweep(rows: list[dict[str, Any]], out: Path) -> Path:
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
    return save(fig, out / 'slo_sweep.png', dpi=110)


def plot_contention(cont: dict[str, Any], out: Path) -> Path:
    """Edge compute per frame of every correction variant, the measured slowdown, the
    SLO and the load's on phases; frames within the SLO among the feasible ones."""
    plt = pyplot()
    fig, (ax, bars) = plt.subplots(1, 2, figsize=(13, 3.6), width_ratios=(3, 1))
    variants = cont['variants']
    for name, run in variants.items():
        ax.plot(run['latency_ms'], lw=1, label=name)
    first = next(iter(variants.values()))
    on = np.array(first['load_on'])
    frames = np.arange(len(on))
    ax.fill_between(frames, 0, 1, where=on, color='red', alpha=0.1, step='mid',
                    transform=ax.get_xaxis_transform(), label='co-runner on')
    start, end = cont['contention_frames']
    ax.axvline(start, color='red', lw=0.8)
    ax.axvline(end, color='red', lw=0.8)
    ax.axhline(cont['slo_ms'], color='k', ls='--', lw=1, label='SLO')
    twin = ax.twinx()
    twin.plot(first['slowdown'], color='grey', lw=0.6, ls=':')
    twin.set_ylabel('slowdown vs profile (dotted)')
    ax.set_xlabel('frame')
    ax.set_ylabel('edge compute (ms)')
    ax.set_title(cont['load'], fontsize=9)
    ax.legend(fontsize=7, loc='upper left')
    ax.grid(alpha=0.3)
    names = list(variants)
    bars.bar(names, [variants[n]['within_feasible'] or 0.0 for n in names])
    bars.axhline(0.9, color='grey', lw=0.8, ls=':')
    bars.set_ylim(0, 1)
    bars.set_title('feasible frames within the SLO', fontsize=9)
    bars.tick_params(axis='x', labelsize=7, rotation=30)
    return save(fig, out / 'slo_contention.png', dpi=110)


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
    parser.add_argument('--frames', type=int, default=None,
                        help='held-out scenes per sweep point (default 100, 8 with --quick; '
                        '0 = no sweep)')
    parser.add_argument('--first-seed', type=int, default=VAL_SEED,
                        help='first held-out scene seed (another range for tuning)')
    parser.add_argument('--fractions', type=frange, default=frange('0.7,0.8,0.9,1.0,1.1,1.25'),
                        help='latency SLOs as fractions of level 0 at the shipped (P, k)')
    parser.add_argument('--contention-frames', type=int, default=None,
                        help='frames of the contention run (default 150, 24 with --quick; '
                        '0 = no run)')
    parser.add_argument('--contention-fraction', type=float, default=1.2,
                        help='the contention SLO as a fraction of level 0 (--contention-ref)')
    parser.add_argument('--contention-ref', choices=('profile', 'measured'), default='profile',
                        help="level 0 of the contention SLO: the profile's (the idle machine; "
                        'every run the same SLO) or measured just before the run')
    parser.add_argument('--contention', choices=LOADS, default='dnn',
                        help='the load: a co-running DNN inference process (default, the '
                        "paper's) or CPU burners")
    parser.add_argument('--corunner-on', type=float, default=1.5,
                        help='seconds of each on phase of the co-running DNN')
    parser.add_argument('--corunner-off', type=float, default=1.0,
                        help='seconds of each off phase of the co-running DNN')
    parser.add_argument('--corunner-threads', type=int, default=1)
    parser.add_argument('--burners', type=int, default=os.cpu_count() or 2,
                        help='with --contention burner: CPU-burning processes (default: one '
                        'per core)')
    parser.add_argument('--backend', default='torch')
    parser.add_argument('--threads', type=int, default=1,
                        help='torch threads (default 1, as the supernet node runs; 0 = '
                        "torch's default)")
    parser.add_argument('--margin', type=float, default=0.0,
                        help='sweep only: plan with the EWMA mean + this many deviations')
    defaults = OnlineCorrection()
    parser.add_argument('--alpha', type=float, default=defaults.alpha,
                        help="the 'shipped' contention variant: EWMA weight")
    parser.add_argument('--alpha-up', type=float, default=defaults.alpha_up,
                        help="... EWMA weight of a sample above the mean (0 = alpha)")
    parser.add_argument('--quantile', type=float, default=defaults.quantile,
                        help='... quantile of the recent errors (0 = the mean)')
    parser.add_argument('--window', type=int, default=defaults.window,
                        help='... recent errors the quantile is taken over')
    parser.add_argument('--quick', action='store_true',
                        help='8 frames, two SLOs, 24 contention frames (unless given)')
    parser.add_argument('--skip-early', action='store_true',
                        help='also run cs, uniform and min in the plain CLG order (a kept '
                             'tile skipped as soon as its turn comes), as cs_plain, ...')
    parser.add_argument('--predictor', type=Path, default=None,
                        help='DEMUX predictor from neulens-profile (default: the shipped profile '
                             "of the detector's architecture)")
    parser.add_argument('--detector', default=DETECTOR, help='detector checkpoint')
    parser.add_argument('--gate', default=GATE, help='gate checkpoint')
    args = parser.parse_args(argv)
    if args.quick:
        args.fractions = [0.8, 1.2]
    if args.frames is None:
        args.frames = 8 if args.quick else 100
    if args.contention_frames is None:
        args.contention_frames = 24 if args.quick else 150
    if min(args.frames, args.contention_frames) < 0:
        parser.error('--frames and --contention-frames must be >= 0')
    try:
        load = Load(args.contention, args.burners,
                    DutyCycle(args.corunner_on, args.corunner_off), args.corunner_threads,
                    args.detector)
        tuned = OnlineCorrection(alpha=args.alpha, alpha_up=args.alpha_up,
                                 quantile=args.quantile, window=args.window)
    except ConfigError as exc:
        parser.error(str(exc))
    args.out.mkdir(parents=True, exist_ok=True)
    spec = detector_held_out_set(detector_metadata(args.detector),
                                 max(args.frames, args.contention_frames, 8), args.first_seed)
    data = load_set(spec, args.out / 'cache')
    bench = Bench(data, args.backend, args.predictor, args.threads,
                  args.margin, variants(args.skip_early), (args.detector, args.gate))
    level0 = bench.level0_ms(12)
    print(f'neulens-bench slo: level 0 at P={SHIPPED[0]}, k={SHIPPED[1]}: {level0:.1f} ms '
          f'({bench.edge.describe()})', flush=True)
    rows = sweep(bench, args.fractions, min(args.frames, len(data))) if args.frames else []
    # the contention SLO from the profile's level 0, or measured just before it
    contention_level0 = (bench.profile_level0_ms() if args.contention_ref == 'profile'
                         else bench.level0_ms(12) if args.contention_frames else level0)
    cont = (contention(bench, args.contention_fraction * contention_level0,
                       args.contention_frames, load, corrections(tuned))
            if args.contention_frames else None)
    result = {'info': {'command': recorded_command('neulens-bench slo', argv),
                       'level0_ms': level0, 'contention_level0_ms': contention_level0,
                       'contention_ref': args.contention_ref,
                       'shipped': list(SHIPPED), 'margin': args.margin,
                       'correction': {'alpha': tuned.alpha, 'alpha_up': tuned.alpha_up,
                                      'quantile': tuned.quantile, 'window': tuned.window},
                       'first_seed': args.first_seed,
                       'threads': torch.get_num_threads(), 'backend': bench.edge.backend_name,
                       'p_options': list(P_OPTIONS), 'detector': args.detector,
                       'gate': args.gate, 'preset': spec.preset},
              'sweep': rows, 'contention': cont}
    (args.out / 'slo.json').write_text(json.dumps(result, indent=1))
    paths = ([plot_sweep(rows, args.out)] if rows else []) + (
        [plot_contention(cont, args.out)] if cont else [])
    for line in table(rows):
        print(line)
    if cont:
        for line in contention_table(cont):
            print(line)
    print(f'json: {args.out / "slo.json"}\nplots: {", ".join(str(p) for p in paths)}')
    return 0


def contention_table(cont: dict[str, Any]) -> Iterator[str]:
    yield (f'contention: cs at {cont["slo_ms"]:.1f} ms, {cont["load"]} from frame '
           f'{cont["contention_frames"][0]} to {cont["contention_frames"][1]}')
    yield (f'{"correction":14s} {"feasible within":>15s} {"(during)":>9s} {"gain":>6s} '
           f'{"within":>7s} {"infeasible":>10s} {"dropped":>8s} {"level":>6s} {"plan ms":>8s} '
           f'{"mAP@0.5":>8s}')
    for name, v in cont['variants'].items():
        level = '-' if v['mean_level'] is None else f'{v["mean_level"]:.2f}'
        plan = '-' if v['plan_ms_mean'] is None else f'{v["plan_ms_mean"]:.1f}'
        gained = v.get('gain_feasible')
        gained = '-' if gained is None else f'{100 * gained:+.0f}'
        yield (f'{name:14s} {percent(v["within_feasible"]):>15s} '
               f'{percent(v["during"]["within_feasible"]):>9s} {gained:>6s} '
               f'{percent(v["within"]):>7s} {percent(v["infeasible_fraction"]):>10s} '
               f'{percent(v["dropped_fraction"]):>8s} {level:>6s} {plan:>8s} '
               f'{v["map50"]:8.3f}')


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
