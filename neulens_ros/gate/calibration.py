"""Calibrating the gate's caution on calibration images of its own (train/plan.py
calibration_set and calibration_walk_set: scenes and walks that neither the supernet nor the gate
trains on, and whose seeds no evaluation set draws from).

The labelling rule raises one tile at a time, so a gate trained on it is optimistic when many
tiles are raised together: skipping every 'skippable' tile at once can remove an object the
single-tile test kept; a gate whose labels keep most tiles wide is pessimistic. The caution c
shifts the logits by -c * level (see run_gate): positive values keep tiles wider, negative ones
compress more. It is chosen as the largest MAC reduction whose mAP@0.5 stays within
`max_loss_points` of the supernet at level 0 on each part of the calibration images (scenes,
and walks where the preset has them: a point that holds on independent scenes can lose far more
on a camera's frames), and ships in the gate's metadata. A gate on tile kinds
(gate/kind_labels.py) is calibrated on (caution, rule) pairs: each oracle rule levels the kinds
the gate chose at each caution (KIND_CAUTIONS), and the cheapest pair within the bound ships
(`kind_rule` beside `caution`). The same sweep also
names the gate's point for a MAC budget (`budget_points`): the most accurate of its points
that fits the budget on the calibration images, so that a budget's operating point is chosen
where the calibration is, not on the data it is evaluated on.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Callable, Iterable, Mapping, Protocol, Sequence, TypeVar

import numpy as np

from neulens_ros.errors import ConfigError
from neulens_ros.eval.oracle import BUDGETS, OracleRule
from neulens_ros.gate.cgg import CompressionGuidingGate, run_gate
from neulens_ros.gate.kind_labels import (OperatingPoint, gate_operating_point, kind_rule,
                                          rule_field, rule_levels)
from neulens_ros.gate.runtime import gate_net
from neulens_ros.progress import progress_bar

# fine steps where the MACs move (a logit shift of 0.5 per level already keeps most tiles, or
# compresses most of them at -0.5)
CAUTIONS = (-1.0, -0.75, -0.5, -0.4, -0.3, -0.2, -0.1, 0.0, 0.1, 0.2, 0.3, 0.4, 0.5, 0.75, 1.0,
            1.5, 2.0, 3.0, 4.0)
# a gate on tile kinds: each with every rule of the oracle family (7 x 9 evaluations)
KIND_CAUTIONS = (-0.5, -0.25, 0.0, 0.5, 1.0, 1.5, 2.0)


class Images(Protocol):
    """A set of network-input images (e.g. neulens_ros.train.data.DetectionSet)."""

    @property
    def images(self) -> np.ndarray: ...  # [N, H, W, 3] uint8


Data = TypeVar('Data', bound=Images)
# (data, per-image levels or None for level 0) -> {'map50': ..., 'macs': ...}
Evaluate = Callable[[Data, Callable[[int], np.ndarray] | None], dict[str, Any]]


def gate_levels(gate: CompressionGuidingGate, data: Images, k: int, caution: float,
                rule: OracleRule | None = None) -> np.ndarray:
    """[N, k*k] the gate's level per tile of every image at `caution` (and, for a gate on
    tile kinds with a calibrated `rule`, its chosen kinds levelled by the rule)."""
    net = gate_net(gate, 'torch')
    return rule_levels(np.stack([run_gate(net, np.ascontiguousarray(img), k, caution).levels
                                 for img in data.images]), rule)


def calibrate_caution(gate: CompressionGuidingGate, parts: Mapping[str, Data], k: int,
                      evaluate: Evaluate[Data], max_loss_points: float = 1.0,
                      cautions: Sequence[float] = CAUTIONS,
                      rules: Sequence[OracleRule] = (), progress: bool = False
                      ) -> dict[str, Any]:
    """The chosen caution (and, with `rules`, for a gate on tile kinds, the chosen rule:
    `kind_rule`, else None) and the (caution, rule, mAP, MACs) sweep behind it, on calibration
    `parts` ({name: images}, e.g. independent scenes and frames of walks). A point is within
    the bound when it loses at most `max_loss_points` against level 0 on every part; its
    `map50` and `macs` are the parts' means (`parts` keeps each part's), and so are the
    reference's."""
    if not parts:
        raise ConfigError('a calibration needs at least one part of images')
    references = {name: evaluate(data, None) for name, data in parts.items()}
    sweep = []
    for caution in progress_bar(cautions, desc='calibration', unit='caution',
                                disable=not progress):
        raw = {name: gate_levels(gate, data, k, caution) for name, data in parts.items()}
        for rule in rules or (None,):
            results = {}
            for name, data in parts.items():
                levels = rule_levels(raw[name], rule)
                result = evaluate(data, lambda i, lv=levels: lv[i])
                results[name] = {'map50': result['map50'], 'macs': result['macs'],
                                 'loss_points': 100 * (references[name]['map50']
                                                       - result['map50'])}
            sweep.append({'caution': caution, 'kind_rule': rule_field(rule),
                          **_means(results.values()),
                          'loss_points': max(r['loss_points'] for r in results.values()),
                          'parts': results})
    ok = [s for s in sweep if s['loss_points'] <= max_loss_points]
    chosen = min(ok, key=lambda s: s['macs']) if ok else \
        min(sweep, key=lambda s: s['loss_points'])  # none within: the nearest to the bound
    reference = _means(references.values())
    return {'caution': chosen['caution'], 'kind_rule': chosen['kind_rule'],
            'reference_map50': reference['map50'], 'reference_macs': reference['macs'],
            'references': {name: {'map50': r['map50'], 'macs': r['macs']}
                           for name, r in references.items()},
            'sweep': sweep, 'within_budget': bool(ok)}


def _means(results: Iterable[Mapping[str, Any]]) -> dict[str, float]:
    """{'map50': ..., 'macs': ...}: the means over `results` (each with both)."""
    rows = list(results)
    return {key: float(np.mean([r[key] for r in rows])) for key in ('map50', 'macs')}


def budget_points(calibration: Mapping[str, Any], gate_labels: str,
                  fractions: Sequence[float] = BUDGETS) -> dict[float, OperatingPoint]:
    """{fraction: (caution, rule)}: for each budget (a fraction of level 0's MACs on the
    calibration images, `reference_macs`), the point of the calibration's sweep with the
    highest mAP@0.5 among those that cost at most that much; budgets no point fits are left
    out, and so is every budget of a calibration without a sweep (one made before sweeps were
    recorded). A sweep point without a kind_rule (a paper gate's) gives the rule None."""
    sweep = calibration.get('sweep') or []
    if not sweep:
        return {}
    reference = calibration.get('reference_macs')
    if not _positive(reference):
        raise ConfigError(f'a calibration sweep needs the positive reference_macs of level 0, '
                          f'got {reference!r}')
    broken = [s for s in sweep if not (isinstance(s, Mapping) and _positive(s.get('macs'))
                                       and _number(s.get('map50')) and _number(s.get('caution')))]
    if broken:
        raise ConfigError(f'every point of a calibration sweep needs numbers caution, map50 and '
                          f'positive macs; {len(broken)} do not, e.g. {broken[0]!r}')
    chosen = {}
    for fraction in fractions:
        fits = [s for s in sweep if s['macs'] <= fraction * reference]
        if fits:
            best = max(fits, key=lambda s: (s['map50'], -s['macs']))
            chosen[fraction] = (float(best['caution']), kind_rule(best.get('kind_rule'),
                                                                  gate_labels))
    return chosen


def checkpoint_budget_points(meta: Mapping[str, Any]) -> dict[float, OperatingPoint]:
    """budget_points of the calibration a gate checkpoint's metadata `meta` ships, for the
    labels it learnt ({} for a gate calibrated before sweeps were kept)."""
    return budget_points(meta.get('calibration') or {}, meta.get('labels', 'paper'))


def halo_warning(meta: Mapping[str, Any], halo: str) -> str | None:
    """Why the operating points a gate checkpoint's metadata `meta` ships may not hold for a
    detector whose tiles run with `halo` (its calibration ran them with another: a calibration
    that records none ran the paper's), or None: they match, or it ships no calibration."""
    calibration = meta.get('calibration') or {}
    made_with = calibration.get('halo', 'paper') if calibration else None
    if made_with is None or made_with == halo:
        return None
    return (f'its operating point was calibrated with tiles at the {made_with!r} halo, this '
            f'detector runs them with {halo!r}: the calibrated and budget points may not hold '
            f'(neulens-train --detector <detector> --gate <gate> --stages calibrate,export '
            f'calibrates it for this detector)')


@dataclass(frozen=True)
class ShippedPoints:
    """The operating points a gate checkpoint ships, read for one detector (shipped_points)."""

    point: OperatingPoint  # the calibrated (caution, kind rule or None)
    budget: dict[float, OperatingPoint]  # budget_points: {fraction of level 0's MACs: point}
    labels: str  # what the gate learnt (GATE_LABELS)
    warning: str | None  # halo_warning: why the points may not hold for the detector


def shipped_points(meta: Mapping[str, Any], halo: str) -> ShippedPoints:
    """The operating points a gate checkpoint's metadata `meta` ships, for a detector whose
    tiles run with `halo`; ConfigError for a kind rule or a sweep that cannot be read."""
    return ShippedPoints(gate_operating_point(meta), checkpoint_budget_points(meta),
                         meta.get('labels', 'paper'), halo_warning(meta, halo))


def _number(value: Any) -> bool:
    """A finite int or float (not a bool)."""
    return isinstance(value, (int, float)) and not isinstance(value, bool) and \
        bool(np.isfinite(value))


def _positive(value: Any) -> bool:
    return _number(value) and value > 0
