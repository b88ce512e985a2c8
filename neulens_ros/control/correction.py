"""DEMUX's online correction of the latency predictor (paper 7.5: contention).

The profile predicts the compute of a plan on an idle machine; a co-running job slows it. The
correction keeps an EWMA of measured / predicted compute (the slowdown) and DEMUX multiplies
every prediction by the planning ratio:

    ratio = mean + margin x deviation                     (quantile = 0, the paper's mean)
    ratio = mean x q-quantile of the recent errors         (quantile = q > 0)

where an error is a frame's measured slowdown over the mean it was planned with (1.0 = the
mean was right). The quantile is a safety margin from the estimator's own recent misses: when
the slowdown switches between an idle and a loaded level faster than the EWMA follows, the
misses after each switch widen the quantile, and the fraction of frames whose slowdown the
ratio covers stays near q. `alpha_up` (> alpha) makes the mean react faster to a slowdown than
to a speed-up: missing the SLO costs more than planning a frame a little narrower.

One ratio for the whole machine by default: a busier machine slows every (P, k) alike, and
DEMUX moves between candidates as the load changes, so a ratio learned on the candidate that
ran must also scale the one it moves to (one ratio per candidate would plan the new one with
the profile's, stale, cost). `per_candidate` keeps one ratio per (P, k), for
`neulens-bench slo`'s side-by-side comparison.
"""

from __future__ import annotations

from collections import deque
from dataclasses import dataclass, field

import numpy as np

from neulens_ros.errors import ConfigError

Key = tuple[str, int] | None  # (P, k), or None for the machine-wide ratio


@dataclass
class OnlineCorrection:
    """Configuration (validated once) plus the learned state per key."""

    alpha: float = 0.2  # EWMA weight of a new slowdown sample
    alpha_up: float = 0.7  # weight of a sample above the mean (0 = alpha)
    margin: float = 0.0  # deviations added to the mean ratio (with quantile = 0)
    quantile: float = 0.7  # of the recent errors the mean is scaled by (0 = off)
    window: int = 50  # recent errors the quantile is taken over
    per_candidate: bool = False
    ratios: dict[Key, float] = field(default_factory=dict)
    deviations: dict[Key, float] = field(default_factory=dict)
    errors: dict[Key, deque[float]] = field(default_factory=dict)

    def __post_init__(self) -> None:
        problems = []
        if not 0.0 < self.alpha <= 1.0:
            problems.append(f'alpha must be in (0, 1], got {self.alpha}')
        if not 0.0 <= self.alpha_up <= 1.0:
            problems.append(f'alpha_up must be in [0, 1] (0 = alpha), got {self.alpha_up}')
        if self.margin < 0:
            problems.append(f'margin must be >= 0, got {self.margin}')
        if not 0.0 <= self.quantile < 1.0:
            problems.append(f'quantile must be in [0, 1) (0 = off), got {self.quantile}')
        if self.quantile and self.margin:
            problems.append('give a margin or a quantile, not both')
        if self.window < 1:
            problems.append(f'window must be >= 1 error, got {self.window}')
        if problems:
            raise ConfigError('invalid online correction: ' + '; '.join(problems))

    def _key(self, p: str, k: int) -> Key:
        return (p, k) if self.per_candidate else None

    def update(self, p: str, k: int, predicted_ms: float, measured_ms: float) -> None:
        """One computed frame: the profile predicted `predicted_ms`, it took `measured_ms`."""
        if predicted_ms <= 0 or measured_ms <= 0:
            return
        key = self._key(p, k)
        old = self.ratios.get(key, 1.0)
        sample = measured_ms / predicted_ms
        alpha = self.alpha_up if self.alpha_up and sample > old else self.alpha
        self.ratios[key] = (1 - alpha) * old + alpha * sample
        self.deviations[key] = ((1 - self.alpha) * self.deviations.get(key, 0.0)
                                + self.alpha * abs(sample - old))
        self.errors.setdefault(key, deque(maxlen=self.window)).append(sample / old)

    def relax(self, beta: float = 0.05) -> None:
        """A frame without a measurement (nothing was computed): move every ratio and every
        recent error a little back toward 1, so a correction learned under load cannot keep
        DEMUX dropping frames (and so measuring nothing) after the load has gone."""
        def toward_one(value: float) -> float:
            return 1.0 + (1.0 - beta) * (value - 1.0)
        for key, value in self.ratios.items():
            self.ratios[key] = toward_one(value)
        for recent in self.errors.values():
            relaxed = [toward_one(e) for e in recent]
            recent.clear()
            recent.extend(relaxed)

    @property
    def has_margin(self) -> bool:
        """Whether ratio() can exceed mean()."""
        return bool(self.quantile or self.margin)

    def mean(self, p: str, k: int) -> float:
        """The EWMA mean slowdown of (p, k), without any margin."""
        return self.ratios.get(self._key(p, k), 1.0)

    def ratio(self, p: str, k: int) -> float:
        """The factor DEMUX multiplies the predicted compute of (p, k) by."""
        key = self._key(p, k)
        mean = self.mean(p, k)
        if self.quantile:
            recent = self.errors.get(key)
            return mean * float(np.quantile(recent, self.quantile)) if recent else mean
        return mean + self.margin * self.deviations.get(key, 0.0)
