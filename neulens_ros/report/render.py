"""report.md, report.json and PNG plots from a bag's frames and summary."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any, Sequence

import matplotlib

matplotlib.use('Agg')
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402

from neulens_ros.report.frames import FrameRecord  # noqa: E402
from neulens_ros.report.summary import end_to_end_ms, slo_latency_ms  # noqa: E402
from neulens_ros.plots import save


def _seconds(frames: Sequence[FrameRecord]) -> np.ndarray:
    t0 = frames[0].stamp_ns if frames else 0
    return np.asarray([(f.stamp_ns - t0) / 1e9 for f in frames])


def plot_stage_latency(frames: Sequence[FrameRecord], stages: Sequence[str], path: Path) -> None:
    data = [[f.stages[s].latency_ms for f in frames if s in f.stages
             and not f.stages[s].dropped] for s in stages]
    fig, ax = plt.subplots(figsize=(7, 4))
    ax.boxplot([d or [np.nan] for d in data], showfliers=True)
    ax.set_xticks(range(1, len(stages) + 1), stages)
    ax.set_ylabel('stage latency [ms]')
    ax.set_title('Per-stage latency')
    ax.grid(alpha=0.3)
    save(fig, path, dpi=110)


def plot_latency_timeline(frames: Sequence[FrameRecord], last_stage: str, path: Path) -> None:
    t = _seconds(frames)
    e2e = np.asarray([end_to_end_ms(f, last_stage) or np.nan for f in frames], dtype=float)
    slo_lat = np.asarray([slo_latency_ms(f) or np.nan for f in frames], dtype=float)
    slo = np.asarray([f.decision.latency_slo_ms if f.decision is not None
                      and f.decision.latency_slo_ms > 0 else np.nan for f in frames])
    fig, ax = plt.subplots(figsize=(8, 4))
    ax.plot(t, e2e, '.-', label=f'end to end (stamp -> {last_stage} end)')
    ax.plot(t, slo_lat, '.-', label='gate start -> supernet end')
    ax.step(t, slo, where='post', color='k', linestyle='--', label='latency SLO')
    miss = slo_lat > slo
    ax.plot(t[miss], slo_lat[miss], 'rx', label='SLO miss')
    ax.set_xlabel('frame time [s]')
    ax.set_ylabel('latency [ms]')
    ax.legend(fontsize=8)
    ax.grid(alpha=0.3)
    save(fig, path, dpi=110)


def plot_bytes(frames: Sequence[FrameRecord], path: Path) -> None:
    sent = [f for f in frames if f.payload_bytes is not None]
    t = _seconds(sent)
    fig, ax = plt.subplots(figsize=(8, 4))
    ax.plot(t, [f.payload_bytes / 1e3 for f in sent], '.-', label='kept tiles (sent)')
    ax.plot(t, [(f.full_frame_bytes or 0) / 1e3 for f in sent], '--',
            label='full frame, same encoding')
    ax.set_xlabel('frame time [s]')
    ax.set_ylabel('bytes on the wire per frame [kB]')
    ax.legend(fontsize=8)
    ax.grid(alpha=0.3)
    save(fig, path, dpi=110)


def plot_levels(frames: Sequence[FrameRecord], path: Path) -> None:
    decided = [f for f in frames if f.decision is not None]
    t = _seconds(decided)
    counts = np.zeros((5, len(decided)))
    for j, f in enumerate(decided):
        for lv in f.decision.levels:
            counts[int(lv), j] += 1
    fig, (ax1, ax2) = plt.subplots(2, 1, figsize=(8, 5), sharex=True)
    labels = ['level 0 (full)', 'level 1 (c=.25)', 'level 2 (c=.5)', 'level 3 (c=.75)',
              'level 4 (skip)']
    if decided:
        ax1.stackplot(t, counts, labels=labels)
    ax1.set_ylabel('tiles')
    ax1.legend(fontsize=7, loc='upper right')
    ax2.plot(t, [f.decision.k for f in decided], '.-', label='k')
    ax2.plot(t, [f.decision.p_layers for f in decided], '.-', label='P (layers)')
    ax2.set_xlabel('frame time [s]')
    ax2.legend(fontsize=8)
    for ax in (ax1, ax2):
        ax.grid(alpha=0.3)
    save(fig, path, dpi=110)


def _fmt(stats: dict[str, Any]) -> str:
    if not stats.get('count'):
        return '| – | – | – | – | – | 0 |'
    return (f"| {stats['p50']:.1f} | {stats['p90']:.1f} | {stats['p99']:.1f} | "
            f"{stats['mean']:.1f} | {stats['jitter']:.1f} | {stats['count']} |")


def markdown(summary: dict[str, Any], bag: Path, plots: Sequence[str]) -> str:
    lines = [f'# Latency report: `{bag.name}`', '',
             f"{summary['frames']} frames; stages: {', '.join(summary['stages']) or 'none'}.",
             '']
    if summary['missing_types']:
        lines += ['Not in this bag (those parts of the report are empty): '
                  + ', '.join(f'`{t}`' for t in summary['missing_types']), '']
    lines += ['| latency [ms] | p50 | p90 | p99 | mean | jitter | frames |',
              '|---|---|---|---|---|---|---|']
    for stage, stats in summary['stage_latency_ms'].items():
        lines.append(f'| stage `{stage}` ' + _fmt(stats))
    lines.append('| transmission ' + _fmt(summary['transmission_ms']))
    lines.append('| gate start -> supernet end (SLO span) ' + _fmt(summary['slo_latency_ms']))
    lines.append(f"| end to end (stamp -> {summary['end_to_end_stage']} end) "
                 + _fmt(summary['end_to_end_ms']))
    bpf = summary['bytes_per_frame']
    lines += ['', '## Bytes on the wire', '']
    if bpf['payload'].get('count'):
        lines.append(f"Kept tiles: mean {bpf['payload']['mean'] / 1e3:.1f} kB per frame; "
                     f"the full frame in the same encoding: "
                     f"{bpf['full_frame']['mean'] / 1e3:.1f} kB; saved "
                     f"{100 * bpf['saved_fraction']:.1f}%.")
    else:
        lines.append('No TileBatch messages in the bag.')
    lines += ['', '## Drops', '', '| stage | dropped | reasons | lost before reaching it |',
              '|---|---|---|---|']
    for stage, d in summary['drops'].items():
        reasons = ', '.join(f'{r}: {n}' for r, n in d['reasons'].items()) or '–'
        lines.append(f"| {stage} | {d['dropped']} | {reasons} | {d['lost_before']} |")
    slo = summary['slo']
    lines += ['', '## SLO and choices', '']
    if slo['frames_with_slo']:
        lines.append(f"{slo['misses']} of {slo['frames_with_slo']} frames missed their "
                     f"latency SLO ({100 * slo['miss_fraction']:.1f}%).")
    lines.append('Chosen (P, k): ' + (', '.join(f'{c}: {n}' for c, n in
                                                summary['choices'].items()) or '–'))
    lines.append('Tiles per level (0 = full width ... 4 = skipped): '
                 + ', '.join(f'{lv}: {n}' for lv, n in summary['level_histogram'].items()))
    lines += [''] + [f'![{p}]({p})' for p in plots] + ['']
    return '\n'.join(lines)


def write_report(summary: dict[str, Any], frames: Sequence[FrameRecord], bag: Path,
                 out: Path) -> dict[str, Path]:
    """Write report.md, report.json and the plots into `out`; returns their paths."""
    out.mkdir(parents=True, exist_ok=True)
    plots: list[str] = []
    if frames:
        plot_stage_latency(frames, summary['stages'], out / 'stage_latency.png')
        plot_latency_timeline(frames, summary['end_to_end_stage'], out / 'latency.png')
        plots += ['stage_latency.png', 'latency.png']
        if any(f.payload_bytes is not None for f in frames):
            plot_bytes(frames, out / 'bytes.png')
            plots.append('bytes.png')
        if any(f.decision is not None for f in frames):
            plot_levels(frames, out / 'levels.png')
            plots.append('levels.png')
    (out / 'report.json').write_text(json.dumps(summary, indent=2))
    (out / 'report.md').write_text(markdown(summary, bag, plots))
    return {'markdown': out / 'report.md', 'json': out / 'report.json',
            **{p: out / p for p in plots}}
