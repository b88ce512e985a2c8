"""Stage timings the nodes logged (parameter log_timing) and their agreement with the report.

Each node with log_timing on writes one line per StageTiming it publishes; the report reads
the same timings from the bag. Comparing the two, frame by frame, checks the bag path end to
end (recording, deserialising, joining by stamp): `neulens-demo` prints the result.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any, Sequence

import numpy as np

from neulens_ros.report.frames import FrameRecord

TIMING_RE = re.compile(r'timing (?P<stage>\w+) stamp=(?P<stamp>\d+) '
                       r'latency_ms=(?P<ms>[0-9.]+)(?P<dropped> dropped)?')


def timing_line(stage: str, stamp_ns: int, latency_ms: float, dropped: bool) -> str:
    """The log line of one StageTiming (parsed back by read_timing_logs)."""
    return (f'timing {stage} stamp={stamp_ns} latency_ms={latency_ms:.3f}'
            + (' dropped' if dropped else ''))


def read_timing_logs(log_dir: Path) -> dict[str, dict[int, float]]:
    """stage -> frame stamp (ns) -> latency (ms) from every *.log in `log_dir` (frames a
    stage dropped are left out, as in the report's stage latencies)."""
    out: dict[str, dict[int, float]] = {}
    for path in sorted(Path(log_dir).glob('*.log')):
        for match in TIMING_RE.finditer(path.read_text(errors='replace')):
            if not match['dropped']:
                out.setdefault(match['stage'], {})[int(match['stamp'])] = float(match['ms'])
    return out


def agreement(frames: Sequence[FrameRecord], logged: dict[str, dict[int, float]],
              tolerance: float = 0.05) -> dict[str, Any]:
    """Per stage: frames in both, p50 from the bag and from the logs, the largest relative
    difference of one frame (latencies under 0.1 ms compared absolutely) and whether every
    frame is within `tolerance`; plus the frames only one side has."""
    stages: dict[str, Any] = {}
    for stage, by_stamp in sorted(logged.items()):
        bag = {f.stamp_ns: f.stages[stage].latency_ms for f in frames
               if stage in f.stages and not f.stages[stage].dropped}
        common = sorted(set(bag) & set(by_stamp))
        if not common:
            stages[stage] = {'frames': 0, 'only_in_logs': len(by_stamp), 'only_in_bag': len(bag)}
            continue
        a = np.array([bag[s] for s in common])
        b = np.array([by_stamp[s] for s in common])
        diff = np.abs(a - b) / np.maximum(b, 0.1)
        stages[stage] = {'frames': len(common), 'report_p50_ms': float(np.median(a)),
                         'log_p50_ms': float(np.median(b)), 'max_relative_diff': float(diff.max()),
                         'within_tolerance': bool(diff.max() <= tolerance),
                         'only_in_logs': len(set(by_stamp) - set(bag)),
                         'only_in_bag': len(set(bag) - set(by_stamp))}
    return {'tolerance': tolerance, 'stages': stages,
            'agree': bool(stages) and all(s.get('within_tolerance') for s in stages.values())}
