"""The ground-truth oracle and the MAC budgets it is compared at.

The oracle knows where the objects are: each tile of the k x k grid gets a level by its kind
(gate/tile_kinds.py) under the ground-truth boxes (in the detector's input pixels): a
*centre* tile owns the centre of a box, a *touched* one only overlaps a box, an *empty* one
overlaps none. A rule is one level per kind; the family (ORACLE_FAMILY, 9 rules) spans
28-68% of tiled level 0's MACs on the hard detector's first held-out range at k = 3 (the
easy detector's 8 rules before centre 0, touched 2 joined: 38-76%, the back alone 34%).

Random tiles at a budget (`random_levels`), the content-blind counterpart: per frame, from
every tile at level 0, a random tile not yet skipped is raised by one level until the frame's
MACs fit the budget.

Budgets: a family's mAP@0.5 at a MAC budget is read off its Pareto front (the points no
cheaper point matches), linearly interpolated between front points (mixing two assignments
over the frames gives every cost in between), the best mAP above the dearest point, and
unreachable (None) below the cheapest one. Image-level width is read the same way on the
uniform levels, except that below its narrowest level it keeps that level's mAP (a baseline
favoured there, so the gains over it are lower bounds; `width_below_narrowest` says when).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Sequence

import numpy as np

from neulens_ros.errors import ConfigError, DataError
from neulens_ros.gate.tile_kinds import owned_blocks, tile_kinds
from neulens_ros.supernet.slim import LEVEL_SKIP
from neulens_ros.supernet.tiling import TileGrid

BUDGETS = (0.40, 0.55, 0.70)  # fractions of tiled level 0's MACs per frame

Point = tuple[float, float]  # (MACs per frame, mAP@0.5)


@dataclass(frozen=True)
class OracleRule:
    """Levels for tiles owning a box centre, touched by a box only, and empty."""

    centre: int
    touched: int
    empty: int

    def __post_init__(self) -> None:
        levels = (self.centre, self.touched, self.empty)
        if not all(0 <= lv <= LEVEL_SKIP for lv in levels):
            raise ConfigError(f'oracle levels must be in 0..{LEVEL_SKIP}, got {levels}')
        if not self.centre <= self.touched <= self.empty:
            raise ConfigError(f'oracle levels must not narrow a tile with more of an object '
                              f'below one with less (centre <= touched <= empty), got {levels}')

    @property
    def name(self) -> str:
        parts = ['skip' if lv == LEVEL_SKIP else str(lv)
                 for lv in (self.centre, self.touched, self.empty)]
        return 'oracle_' + '_'.join(parts)

    def levels(self, kinds: np.ndarray) -> np.ndarray:
        """Levels [T] int64 for tile kinds [T] (CENTRE, TOUCHED or EMPTY)."""
        return np.array((self.centre, self.touched, self.empty), np.int64)[kinds]


# Cheapest to dearest (28, 29, 35, 42, 53, 56, 59, 62, 68% of level 0's MACs on the hard
# detector's first held-out range at k = 3): empty tiles skipped, touched ones at the narrowest
# level or skipped, the centre tiles widened step by step; then the empty tiles kept at
# level 3 and the touched ones widened.
ORACLE_FAMILY = (OracleRule(3, LEVEL_SKIP, LEVEL_SKIP), OracleRule(3, 3, LEVEL_SKIP),
                 OracleRule(2, 3, LEVEL_SKIP), OracleRule(1, 3, LEVEL_SKIP),
                 OracleRule(0, 3, LEVEL_SKIP), OracleRule(0, 3, 3), OracleRule(0, 2, 3),
                 OracleRule(0, 1, 3), OracleRule(0, 0, 3))


def oracle_levels(boxes: Sequence[np.ndarray], grid: TileGrid,
                  rules: Sequence[OracleRule] = ORACLE_FAMILY) -> dict[str, np.ndarray]:
    """{rule name: levels [N, T]} for every image's boxes [M, 4] on `grid`."""
    owned = owned_blocks(grid)
    kinds = np.stack([tile_kinds(b, owned) for b in boxes]) if len(boxes) else \
        np.zeros((0, len(owned)), np.int64)  # [N, T]
    return {rule.name: rule.levels(kinds) for rule in rules}


def pareto_front(points: Sequence[Point]) -> list[Point]:
    """The points no cheaper-or-equal point matches in mAP, by increasing MACs."""
    front: list[Point] = []
    for macs, score in sorted(points, key=lambda p: (p[0], -p[1])):
        if not front or score > front[-1][1]:
            front.append((float(macs), float(score)))
    return front


def at_budget(points: Sequence[Point], macs: float, keep_below: bool = False
              ) -> float | None:
    """mAP along the Pareto front of `points` at `macs`: linear between front points, the
    best mAP above the dearest, None below the cheapest (its mAP with `keep_below`)."""
    if not points:
        raise DataError('no (MACs, mAP) points to read a budget from')
    front = pareto_front(points)
    if macs < front[0][0] and not keep_below:
        return None
    return float(np.interp(macs, [p[0] for p in front], [p[1] for p in front]))


def budget_rows(width: Sequence[Point], oracle: Sequence[Point], cgg: Sequence[Point],
                level0_macs: float, fractions: Sequence[float] = BUDGETS
                ) -> list[dict[str, float | bool | None]]:
    """Per budget fraction of `level0_macs`: image-level width, oracle and CGG mAP@0.5,
    the oracle's and the CGG's gain over width and the share of the oracle's gain the CGG
    captures (negative where the CGG is below width; None where the oracle gains nothing or
    a family cannot reach the budget)."""
    if level0_macs <= 0:
        raise ConfigError(f'level 0 MACs must be positive, got {level0_macs}')
    bad = [f for f in fractions if not 0 < f <= 1]
    if bad:
        raise ConfigError(f'budget fractions must be in (0, 1] of level 0\'s MACs, got {bad}')
    return [_budget_row(width, oracle, cgg, level0_macs, f) for f in fractions]


def _budget_row(width: Sequence[Point], oracle: Sequence[Point], cgg: Sequence[Point],
                level0_macs: float, fraction: float) -> dict[str, float | bool | None]:
    macs = fraction * level0_macs
    w = at_budget(width, macs, keep_below=True)
    o, c = at_budget(oracle, macs), at_budget(cgg, macs)
    oracle_gain = None if o is None else o - w
    cgg_gain = None if c is None else c - w
    captured = None
    if oracle_gain is not None and oracle_gain > 0 and cgg_gain is not None:
        captured = cgg_gain / oracle_gain
    return {'fraction': fraction, 'macs': macs, 'width_map50': w,
            'width_below_narrowest': macs < min(p[0] for p in width),
            'oracle_map50': o, 'cgg_map50': c, 'oracle_gain': oracle_gain,
            'cgg_gain': cgg_gain, 'captured': captured}


def random_levels(costs: np.ndarray, budget: float, rng: np.random.Generator) -> np.ndarray:
    """Levels [T] int64 of one frame from every tile at level 0, raising a random tile not yet
    skipped by one level until the tiles' MACs (costs [T, LEVEL_SKIP + 1], per tile and
    level) are within `budget` (every tile skipped if it never fits)."""
    tiles = np.arange(len(costs))
    levels = np.zeros(len(costs), np.int64)
    while costs[tiles, levels].sum() > budget and (levels < LEVEL_SKIP).any():
        levels[rng.choice(np.flatnonzero(levels < LEVEL_SKIP))] += 1
    return levels
