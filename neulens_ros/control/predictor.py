"""Latency and memory predictors (paper 5.3): linear in the level histogram.

For a split point P and grid k, the front's cost is a sum over tiles of a per-level cost plus
a per-call cost for every level that has tiles (one batched call per level), so
latency ~ a_0 + sum_l a_l n_l + sum_l b_l [n_l > 0], with n_l the number of tiles at level l
(skipped tiles, level 4, cost only their share of stitching); memory likewise. The back runs
once per frame at full size: a constant per P, measured separately. Coefficients are fitted by
least squares on a profile of the real front on this machine and backend.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Iterable, Mapping, Sequence

import numpy as np

from neulens_ros.errors import ConfigError, DataError
from neulens_ros.levels import NUM_LEVELS



@dataclass(frozen=True)
class ProfileRecord:
    """One measurement: the front at (p, k) with a level histogram, or the back (k = 0)."""

    p: str
    k: int  # 0 = the back of P (histogram unused)
    histogram: tuple[int, ...]  # [5] tiles per level
    latency_ms: float
    memory_mb: float


def features(histogram: Sequence[float]) -> list[float]:
    """[1, n_0 .. n_4, [n_0 > 0] .. [n_3 > 0]]: the regression inputs of a histogram."""
    h = [float(v) for v in histogram]
    return [1.0, *h, *(1.0 if v > 0 else 0.0 for v in h[:NUM_LEVELS - 1])]


@dataclass(frozen=True)
class LinearModel:
    """y = coef . features(histogram)."""

    coef: tuple[float, ...]  # [1 + NUM_LEVELS + NUM_LEVELS - 1]

    def __call__(self, h: Sequence[float]) -> float:
        """The prediction for histogram h [5]; written out because DEMUX calls it per step."""
        c = self.coef
        return (c[0] + c[1] * h[0] + c[2] * h[1] + c[3] * h[2] + c[4] * h[3] + c[5] * h[4]
                + (c[6] if h[0] else 0.0) + (c[7] if h[1] else 0.0)
                + (c[8] if h[2] else 0.0) + (c[9] if h[3] else 0.0))

    @classmethod
    def fit(cls, histograms: np.ndarray, values: np.ndarray) -> 'LinearModel':
        x = np.array([features(h) for h in histograms])
        # least squares (minimum norm: the histogram sums to k*k, so columns are dependent)
        coef, *_ = np.linalg.lstsq(x, values, rcond=None)
        return cls(tuple(float(c) for c in coef))


@dataclass(frozen=True)
class Predictor:
    """Per (P, k) linear front models plus per-P back constants."""

    latency: Mapping[tuple[str, int], LinearModel]
    memory: Mapping[tuple[str, int], LinearModel]
    back_latency_ms: Mapping[str, float]
    back_memory_mb: Mapping[str, float]
    meta: Mapping[str, Any] = field(default_factory=dict)

    def candidates(self) -> list[tuple[str, int]]:
        return sorted(self.latency)

    @property
    def halo(self) -> str:
        """The tile halo the front was profiled with ('paper' for profiles that record none:
        they predate other halos)."""
        return str(self.meta.get('halo', 'paper'))

    def predict(self, p: str, k: int, histogram: np.ndarray) -> tuple[float, float]:
        """(latency ms, memory MB) of front + back for one frame."""
        if (p, k) not in self.latency:
            raise ConfigError(f'no profile for P={p}, k={k}; profiled: {self.candidates()}')
        h = np.asarray(histogram, dtype=np.float64)
        return (self.latency[(p, k)](h) + self.back_latency_ms[p],
                max(self.memory[(p, k)](h), self.back_memory_mb[p]))

    @classmethod
    def fit(cls, records: Iterable[ProfileRecord], meta: Mapping[str, Any] | None = None
            ) -> 'Predictor':
        records = list(records)
        fronts: dict[tuple[str, int], list[ProfileRecord]] = {}
        backs: dict[str, list[ProfileRecord]] = {}
        for r in records:
            if r.k == 0:
                backs.setdefault(r.p, []).append(r)
            else:
                fronts.setdefault((r.p, r.k), []).append(r)
        missing = sorted({p for p, _ in fronts} - set(backs))
        if missing or not fronts:
            raise DataError(f'profile needs front records and a back record for every P '
                            f'(missing backs: {missing})')
        lat, mem = {}, {}
        for key, rows in fronts.items():
            if len(rows) < 2 * NUM_LEVELS:
                raise DataError(f'{len(rows)} records for P={key[0]} k={key[1]}: need at '
                                f'least {2 * NUM_LEVELS} to fit the coefficients')
            hist = np.array([r.histogram for r in rows], dtype=np.float64)
            lat[key] = LinearModel.fit(hist, np.array([r.latency_ms for r in rows]))
            mem[key] = LinearModel.fit(hist, np.array([r.memory_mb for r in rows]))
        return cls(lat, mem, {p: float(np.median([r.latency_ms for r in rows]))
                              for p, rows in backs.items()},
                   {p: float(np.median([r.memory_mb for r in rows]))
                    for p, rows in backs.items()}, dict(meta or {}))

    def to_json(self) -> dict[str, Any]:
        return {'latency': {f'{p}|{k}': m.coef for (p, k), m in self.latency.items()},
                'memory': {f'{p}|{k}': m.coef for (p, k), m in self.memory.items()},
                'back_latency_ms': dict(self.back_latency_ms),
                'back_memory_mb': dict(self.back_memory_mb), 'meta': dict(self.meta)}

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> 'Predictor':
        def models(section: Mapping[str, Any]) -> dict[tuple[str, int], LinearModel]:
            out = {}
            for key, coef in section.items():
                p, k = key.split('|')
                out[(p, int(k))] = LinearModel(tuple(coef))
            return out
        try:
            return cls(models(data['latency']), models(data['memory']),
                       dict(data['back_latency_ms']), dict(data['back_memory_mb']),
                       dict(data.get('meta', {})))
        except (KeyError, ValueError, TypeError) as exc:
            raise DataError(f'not a predictor file: {exc}') from exc

    def save(self, path: Path) -> None:
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(json.dumps(self.to_json(), indent=1))

    @classmethod
    def load(cls, path: Path) -> 'Predictor':
        if not Path(path).is_file():
            raise DataError(f'predictor file {path} not found: create it with neulens-profile')
        return cls.from_json(json.loads(Path(path).read_text()))


def held_out_error(predictor: Predictor, records: Iterable[ProfileRecord]) -> dict[str, float]:
    """Mean absolute percentage error of latency and memory (front + back) on `records`."""
    lat_err, mem_err = [], []
    for r in records:
        if r.k == 0:
            continue
        lat, mem = predictor.predict(r.p, r.k, np.asarray(r.histogram))
        back_lat = predictor.back_latency_ms[r.p]
        true_lat = r.latency_ms + back_lat
        lat_err.append(abs(lat - true_lat) / true_lat)
        true_mem = max(r.memory_mb, predictor.back_memory_mb[r.p])
        mem_err.append(abs(mem - true_mem) / true_mem)
    return {'latency_mape': float(np.mean(lat_err)), 'memory_mape': float(np.mean(mem_err)),
            'records': len(lat_err)}
