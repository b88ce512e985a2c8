"""Rolling statistics for the live view (`neulens-top`): fed by StageTiming and TileDecision
messages as they arrive, rendered as a rich table. No ROS imports: the tool converts the
messages into the plain values below."""

from __future__ import annotations

from collections import deque
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from neulens_ros.report.summary import describe, ordered_stages


@dataclass
class StageWindow:
    """The last `size` records of one stage."""

    size: int = 200
    dropped: int = 0
    total: int = 0

    def __post_init__(self) -> None:
        self.latency_ms: deque[float] = deque(maxlen=self.size)
        self.arrivals_s: deque[float] = deque(maxlen=self.size)  # monotonic seconds
        self.bytes_out: deque[int] = deque(maxlen=self.size)

    def add(self, latency_ms: float, bytes_out: int, now_s: float, dropped: bool) -> None:
        self.total += 1
        if dropped:
            self.dropped += 1
            return
        self.latency_ms.append(latency_ms)
        self.arrivals_s.append(now_s)
        self.bytes_out.append(bytes_out)

    def fps(self, now_s: float, span_s: float = 5.0) -> float:
        """Frames per second over the last `span_s` seconds."""
        recent = [t for t in self.arrivals_s if now_s - t <= span_s]
        return len(recent) / span_s


@dataclass
class LiveStats:
    """Per-stage windows plus the latest decision (SLO in force, choice, prediction)."""

    window: int = 200
    stages: dict[str, StageWindow] = field(default_factory=dict)
    decision: dict[str, Any] = field(default_factory=dict)
    slo_misses: int = 0
    decisions: int = 0

    def add_timing(self, stage: str, latency_ms: float, bytes_out: int, now_s: float,
                   dropped: bool = False) -> None:
        self.stages.setdefault(stage, StageWindow(self.window)).add(latency_ms, bytes_out,
                                                                     now_s, dropped)

    def add_decision(self, **fields: Any) -> None:
        """k, p_layers, levels, policy, latency_slo_ms, predicted_latency_ms, fits_slo,
        bandwidth_mbps, rtt_ms of the newest TileDecision."""
        self.decisions += 1
        self.slo_misses += 0 if fields.get('fits_slo', True) else 1
        self.decision = fields

    def rows(self, now_s: float) -> list[tuple[str, ...]]:
        """(stage, fps, p50 ms, p90 ms, kB out per frame, dropped) in pipeline order."""
        out = []
        for name in ordered_stages(self.stages):
            w = self.stages[name]
            lat = describe(w.latency_ms)
            p50, p90 = lat.get('p50', np.nan), lat.get('p90', np.nan)
            kb = float(np.mean(w.bytes_out)) / 1e3 if w.bytes_out else 0.0
            out.append((name, f'{w.fps(now_s):.1f}', f'{p50:.1f}', f'{p90:.1f}', f'{kb:.1f}',
                        f'{w.dropped}/{w.total}'))
        return out

    def headline(self) -> str:
        d = self.decision
        if not d:
            return 'no TileDecision yet'
        levels = np.bincount(np.asarray(d.get('levels', []), np.int64), minlength=5)
        slo = d.get('latency_slo_ms', 0.0)
        return (f"policy {d.get('policy', '?')}  SLO {f'{slo:.0f} ms' if slo else 'none'}  "
                f"choice P{d.get('p_layers', '?')}/k{d.get('k', '?')}  levels "
                f"{'/'.join(str(int(v)) for v in levels)} (0..skip)  predicted "
                f"{d.get('predicted_latency_ms', 0.0):.1f} ms  link "
                f"{d.get('bandwidth_mbps', 0.0):.1f} Mbit/s, RTT {d.get('rtt_ms', 0.0):.1f} ms  "
                f"flagged {self.slo_misses}/{self.decisions}")


COLUMNS = ('stage', 'fps', 'p50 ms', 'p90 ms', 'kB out', 'dropped')


def render(stats: LiveStats, now_s: float) -> Any:
    """A rich Table of `stats`."""
    from rich.table import Table
    table = Table(title='neulens_ros live', caption=stats.headline())
    for name in COLUMNS:
        table.add_column(name, justify='left' if name == 'stage' else 'right')
    for row in stats.rows(now_s):
        table.add_row(*row)
    return table


def plain(stats: LiveStats, now_s: float) -> str:
    """The same as text lines (for logs and pipes)."""
    lines = ['  '.join(f'{c:>8s}' for c in COLUMNS)]
    lines += ['  '.join(f'{v:>8s}' for v in row) for row in stats.rows(now_s)]
    return '\n'.join(lines + [stats.headline()])
