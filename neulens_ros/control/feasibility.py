"""Which frames an SLO could have been met on, at the speed the machine actually ran them.

Under a co-running job the machine's speed changes from frame to frame, so "DEMUX kept the
SLO on x% of frames" mixes DEMUX's mistakes with frames no plan could have saved. A frame is
judged against DEMUX's own plan space at its measured speed:

- slowdown of a computed frame: its measured compute over the profile's prediction of the
  plan that ran (front + back, no online correction): the factor the machine was slower than
  the profile on that very frame;
- slowdown of a frame with nothing computed (DEMUX dropped it): the slowdown measured
  nearest in time on another computed frame (`nearest_fill`);
- feasible: the cheapest plan that keeps every tile the gate kept, each at the narrowest
  width, over every (P, k) (Decision.floor_ms, from the profile), times that slowdown, meets
  the SLO. Skipping a kept tile is outside this plan space: it always "fits" and so would make
  every frame feasible, at the price of the tile's objects.
"""

from __future__ import annotations

from typing import Sequence

import numpy as np

from neulens_ros.errors import ConfigError


def slowdown(measured_ms: float, predicted_ms: float) -> float:
    """Measured compute / the profile's prediction of the same plan (1.0 = as profiled)."""
    if measured_ms <= 0 or predicted_ms <= 0:
        raise ConfigError(f'a slowdown needs positive times (measured {measured_ms} ms, '
                          f'predicted {predicted_ms} ms)')
    return measured_ms / predicted_ms


def nearest_fill(times: Sequence[float], values: Sequence[float | None]) -> list[float]:
    """`values` [n] with every None replaced by the value measured nearest in `times` [n]
    (seconds; ties go to the earlier one)."""
    if len(times) != len(values):
        raise ConfigError(f'{len(times)} times for {len(values)} values')
    known = [i for i, v in enumerate(values) if v is not None]
    if not known:
        raise ConfigError('no measured value to fill from: every frame was dropped')
    t = np.asarray(times, dtype=np.float64)
    known_t = t[known]
    out = []
    for i, v in enumerate(values):
        if v is None:
            v = values[known[int(np.argmin(np.abs(known_t - t[i])))]]
        out.append(float(v))
    return out


def feasible(floor_ms: float, slowdown_factor: float, slo_ms: float) -> bool:
    """Could some plan keeping every kept tile meet `slo_ms` at `slowdown_factor`?"""
    if slo_ms <= 0:
        raise ConfigError(f'feasibility needs a latency SLO > 0 ms, got {slo_ms}')
    return bool(floor_ms * slowdown_factor <= slo_ms)
