"""Latency statistics of a bag's frames: the numbers behind report.json.

Definitions (milliseconds unless noted):
- stage latency: StageTiming end - start of that stage for that frame;
- transmission: supernet start (edge received the TileBatch) - TileBatch.sent (headset);
- slo_latency: supernet end - gate start, the span DEMUX predicts and the SLO bounds;
- end_to_end: end of the last stage (lifting if recorded, else the last stage in the bag)
  - the camera frame's stamp;
- jitter: mean absolute difference between consecutive frames' values;
- a frame is dropped by a stage when its StageTiming says so, and lost when an earlier stage
  handled it but a later one never reported it.
"""

from __future__ import annotations

from collections import Counter
from typing import Any, Iterable, Sequence

import numpy as np

from neulens_ros.report.frames import STAGE_ORDER, BagFrames, FrameRecord


def describe(values: Sequence[float]) -> dict[str, float | int]:
    """count, mean, p50, p90, p99, min, max and jitter of `values` (empty -> count 0)."""
    arr = np.asarray([v for v in values if v is not None], dtype=np.float64)
    if arr.size == 0:
        return {'count': 0}
    jitter = float(np.mean(np.abs(np.diff(arr)))) if arr.size > 1 else 0.0
    p50, p90, p99 = np.percentile(arr, [50, 90, 99])
    return {'count': int(arr.size), 'mean': float(arr.mean()), 'p50': float(p50),
            'p90': float(p90), 'p99': float(p99), 'min': float(arr.min()),
            'max': float(arr.max()), 'jitter': jitter}


def ordered_stages(names: Iterable[str]) -> list[str]:
    """Stage names in pipeline order (unknown stages after, sorted)."""
    seen = set(names)
    return [s for s in STAGE_ORDER if s in seen] + sorted(seen - set(STAGE_ORDER))


def stages_in(frames: Sequence[FrameRecord]) -> list[str]:
    """Stage names present, in pipeline order (unknown stages after, sorted)."""
    return ordered_stages(s for f in frames for s in f.stages)


def end_to_end_ms(frame: FrameRecord, last_stage: str) -> float | None:
    rec = frame.stages.get(last_stage)
    if rec is None or rec.dropped:
        return None
    return (rec.end_ns - frame.stamp_ns) / 1e6


def slo_latency_ms(frame: FrameRecord) -> float | None:
    gate, supernet = frame.stages.get('gate'), frame.stages.get('supernet')
    if gate is None or supernet is None or supernet.dropped:
        return None
    return (supernet.end_ns - gate.start_ns) / 1e6


def transmission_ms(frame: FrameRecord) -> float | None:
    supernet = frame.stages.get('supernet')
    if supernet is None or frame.batch_sent_ns is None:
        return None
    return (supernet.start_ns - frame.batch_sent_ns) / 1e6


def drops(frames: Sequence[FrameRecord], stages: Sequence[str]) -> dict[str, dict[str, Any]]:
    """Per stage: frames it dropped (with reasons) and frames lost before reaching it."""
    out: dict[str, dict[str, Any]] = {}
    for i, stage in enumerate(stages):
        reasons: Counter[str] = Counter()
        lost = 0
        for f in frames:
            rec = f.stages.get(stage)
            if rec is not None and rec.dropped:
                reasons[rec.reason or 'unspecified'] += 1
            earlier = [f.stages.get(s) for s in stages[:i]]
            if rec is None and earlier and all(e is not None and not e.dropped
                                               for e in earlier):
                lost += 1
        out[stage] = {'dropped': sum(reasons.values()), 'reasons': dict(reasons),
                      'lost_before': lost}
    return out


def summarize(bag: BagFrames) -> dict[str, Any]:
    """The report's JSON (keys documented in docs/report.md)."""
    frames = bag.frames
    stages = stages_in(frames)
    last = 'lifting' if 'lifting' in stages else (stages[-1] if stages else '')
    decided = [f for f in frames if f.decision is not None]
    slo_values = [slo_latency_ms(f) for f in frames]
    with_slo = [(f, v) for f, v in zip(frames, slo_values, strict=True) if v is not None
                and f.decision is not None and f.decision.latency_slo_ms > 0]
    misses = [f for f, v in with_slo if v > f.decision.latency_slo_ms]
    sent = [f for f in frames if f.payload_bytes is not None]
    level_hist = Counter(int(lv) for f in decided for lv in f.decision.levels)
    return {
        'frames': len(frames),
        'topics': bag.topics,
        'missing_types': bag.missing,
        'stages': stages,
        'end_to_end_stage': last,
        'stage_latency_ms': {s: describe([f.stages[s].latency_ms for f in frames
                                          if s in f.stages and not f.stages[s].dropped])
                             for s in stages},
        'end_to_end_ms': describe([end_to_end_ms(f, last) for f in frames]) if last else
        {'count': 0},
        'slo_latency_ms': describe(slo_values),
        'transmission_ms': describe([transmission_ms(f) for f in frames]),
        'bytes_per_frame': {
            'payload': describe([f.payload_bytes for f in sent]),
            'full_frame': describe([f.full_frame_bytes for f in sent]),
            'saved_fraction': (1.0 - sum(f.payload_bytes or 0 for f in sent)
                               / max(1, sum(f.full_frame_bytes or 0 for f in sent)))
            if sent else None,
        },
        'drops': drops(frames, stages),
        'slo': {
            'frames_with_slo': len(with_slo),
            'misses': len(misses),
            'miss_fraction': len(misses) / len(with_slo) if with_slo else None,
        },
        'choices': dict(Counter(f'P{f.decision.p_layers}/k{f.decision.k}' for f in decided)),
        'level_histogram': {str(lv): level_hist.get(lv, 0) for lv in range(5)},
        'tiles_sent': describe([f.tiles_sent for f in sent]),
    }
