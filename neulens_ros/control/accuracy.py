"""The accuracy comparator: expected mAP loss of a (P, k, levels) choice (paper 5.4).

Expected loss (mAP@0.5 points) = tiling loss of (P, k) at level 0 (measured against the
untiled model) + loss of the gate's own choice + slope x degradation, where the degradation
score is the mean level raise over the gate's choice (what CLG added to meet the SLO) and the
slope is measured from the gate's choice raised by 1 and 2 levels. All numbers come from the
evaluation run (`from_evaluation`) and ship next to the detector.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Mapping, Sequence

import numpy as np

from neulens_ros.errors import DataError


@dataclass(frozen=True)
class AccuracyTable:
    tiling_loss: Mapping[str, float] = field(default_factory=dict)  # 'P|k' -> points
    gate_loss: float = 0.0  # points lost by the gate's choice vs level 0
    slope: float = 10.0  # points per level of mean raise over the gate's choice

    def expected_loss(self, p: str, k: int, levels: Sequence[int],
                      gate_levels: Sequence[int]) -> float:
        raise_ = float(np.mean(np.asarray(levels) - np.asarray(gate_levels)))
        return self.tiling_loss.get(f'{p}|{k}', 0.0) + self.gate_loss + self.slope * raise_

    @classmethod
    def from_evaluation(cls, results: Mapping[str, Any]) -> 'AccuracyTable':
        """From neulens-train's eval.json (variants tiled_l0_<P>_k<k>, cgg, cgg_plus1/2)."""
        v = results['variants']
        untiled = v['untiled']['map50']
        tiling = {}
        for name, row in v.items():
            if name.startswith('tiled_l0_') and '_k' in name:
                p, k = name[len('tiled_l0_'):].rsplit('_k', 1)
                tiling[f'{p}|{k}'] = 100.0 * max(0.0, untiled - row['map50'])
        gate = 100.0 * max(0.0, v['uniform_0']['map50'] - v['cgg']['map50'])
        raises = [100.0 * (v['cgg']['map50'] - v[f'cgg_plus{s}']['map50']) / s for s in (1, 2)]
        return cls(tiling, gate, max(0.0, float(np.mean(raises))))

    def save(self, path: Path) -> None:
        path.write_text(json.dumps({'tiling_loss': dict(self.tiling_loss),
                                    'gate_loss': self.gate_loss, 'slope': self.slope},
                                   indent=1))

    @classmethod
    def load(cls, path: Path) -> 'AccuracyTable':
        try:
            data = json.loads(Path(path).read_text())
            return cls(dict(data['tiling_loss']), float(data['gate_loss']),
                       float(data['slope']))
        except (OSError, ValueError, KeyError) as exc:
            raise DataError(f'accuracy table {path} is unusable: {exc}') from exc
