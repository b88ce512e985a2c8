"""Calibrating the gate's caution on training images (never on the evaluation set).

The labelling rule raises one tile at a time, so a gate trained on it is optimistic when many
tiles are raised together: skipping every 'skippable' tile at once can remove an object the
single-tile test kept; a gate whose labels keep most tiles wide is pessimistic. The caution c
shifts the logits by -c * level (see run_gate): positive values keep tiles wider, negative ones
compress more. It is chosen as the largest MAC reduction whose mAP@0.5 stays within
`max_loss_points` of the supernet at level 0 on training images, and ships in the gate's
metadata.
"""

from __future__ import annotations

from typing import Any, Callable, Protocol, Sequence, TypeVar

import numpy as np

from neulens_ros.gate.cgg import CompressionGuidingGate, run_gate

# fine steps where the MACs move (a logit shift of 0.5 per level already keeps most tiles, or
# compresses most of them at -0.5)
CAUTIONS = (-1.0, -0.75, -0.5, -0.4, -0.3, -0.2, -0.1, 0.0, 0.1, 0.2, 0.3, 0.4, 0.5, 0.75, 1.0,
            1.5, 2.0, 3.0, 4.0)


class Images(Protocol):
    """A set of network-input images (e.g. neulens_ros.train.data.DetectionSet)."""

    @property
    def images(self) -> np.ndarray: ...  # [N, H, W, 3] uint8


Data = TypeVar('Data', bound=Images)
# (data, per-image levels or None for level 0) -> {'map50': ..., 'macs': ...}
Evaluate = Callable[[Data, Callable[[int], np.ndarray] | None], dict[str, Any]]


def gate_levels(gate: CompressionGuidingGate, data: Images, k: int, caution: float
                ) -> np.ndarray:
    """[N, k*k] the gate's level per tile of every image at `caution`."""
    return np.stack([run_gate(gate, np.ascontiguousarray(img), k, caution).levels
                     for img in data.images])


def calibrate_caution(gate: CompressionGuidingGate, data: Data, k: int,
                      evaluate: Evaluate[Data], max_loss_points: float = 1.0,
                      cautions: Sequence[float] = CAUTIONS) -> dict[str, Any]:
    """The chosen caution and the (caution, mAP, MACs) sweep behind it."""
    reference = evaluate(data, None)
    sweep = []
    for caution in cautions:
        levels = gate_levels(gate, data, k, caution)
        result = evaluate(data, lambda i, lv=levels: lv[i])
        sweep.append({'caution': caution, 'map50': result['map50'], 'macs': result['macs'],
                      'loss_points': 100 * (reference['map50'] - result['map50'])})
    ok = [s for s in sweep if s['loss_points'] <= max_loss_points]
    chosen = min(ok, key=lambda s: s['macs']) if ok else max(sweep, key=lambda s: s['map50'])
    return {'caution': chosen['caution'], 'reference_map50': reference['map50'],
            'reference_macs': reference['macs'], 'sweep': sweep,
            'within_budget': bool(ok)}
