"""CLG, the compression level gear (paper 5.2): which tiles to compress further, in what order.

A policy turns the gate's levels and confidences into a sequence of steps; each step raises
some tiles by one level. DEMUX applies steps until the predicted cost fits the SLO. Every
policy terminates: each step raises at least one tile and no tile goes past skip (4).

Skipping is the last resort: every policy first narrows the tiles the gate kept down to the
narrowest width (level 3), and only when that is not enough raises them, in the same order,
to skip. A narrow tile still finds most of its objects, a skipped one none (docs/control.md
has the SLO sweep with both orders).

- 'cs' (confidence stepping, the paper's): tiles whose confidence is below theta_f, sorted
  from least to most confident, are raised dw at a time, cyclically (dw = 2 / 4 / 5 for
  k = 2 / 3 / 4). When none of those can be raised further, the remaining tiles continue in
  the same confidence order.
- 'uniform': every tile that can still be raised goes up one level per step.
- 'min': one tile per step, the least confident one that can still be raised.
- 'image': image-level dynamic width (DS-Net / LegoDNN style), the baseline: the gate is not
  used, every tile starts at level 0 and all go up together, one level per step, never to
  skip (dropping the whole frame is not a width).
- 'fixed': no steps; the levels are what the caller fixed.
"""

from __future__ import annotations

from typing import Iterator, Sequence

from neulens_ros.errors import ConfigError
from neulens_ros.levels import LEVEL_SKIP

POLICIES = ('cs', 'uniform', 'min', 'image', 'fixed')
DEFAULT_DELTA_W = {2: 2, 3: 4, 4: 5}
NARROWEST = LEVEL_SKIP - 1  # the last computed level


def steps(levels: Sequence[int], confidences: Sequence[float], policy: str,
          delta_w: int, theta_f: float, skip_last: bool = True) -> Iterator[list[int]]:
    """Yield the tile indices raised by each successive step (levels are not modified).
    `skip_last` False raises tiles to skip as soon as their turn comes (the plain order, kept
    for comparison: `neulens-bench slo --skip-early`)."""
    if policy not in POLICIES:
        raise ConfigError(f'policy {policy!r} is not one of {POLICIES}')
    if delta_w < 1:
        raise ConfigError(f'delta_w must be >= 1, got {delta_w}')
    if policy == 'fixed':
        return
    current = [int(v) for v in levels]
    conf = [float(c) for c in confidences]
    order = sorted(range(len(conf)), key=conf.__getitem__)  # least confident first (stable)
    low = [i for i in order if conf[i] < theta_f]
    rest = [i for i in order if conf[i] >= theta_f]
    if policy == 'image':
        tops: tuple[int, ...] = (NARROWEST,)
    else:
        tops = (NARROWEST, LEVEL_SKIP) if skip_last else (LEVEL_SKIP,)
    for top in tops:  # first narrow every kept tile, then skip
        cursor = 0
        while any(v < top for v in current):
            if policy in ('uniform', 'image'):
                chosen = [i for i, v in enumerate(current) if v < top]
            elif policy == 'min':
                chosen = [next(i for i in order if current[i] < top)]
            else:
                pool = [i for i in low if current[i] < top] or \
                    [i for i in rest if current[i] < top]
                chosen = [pool[(cursor + j) % len(pool)]
                          for j in range(min(delta_w, len(pool)))]
                cursor = (cursor + len(chosen)) % len(pool)
            for i in chosen:
                current[i] += 1
            yield chosen
