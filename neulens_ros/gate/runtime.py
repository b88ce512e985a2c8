"""The gate's network on ONNX Runtime: the same function as the PyTorch module, with much less
fixed cost per call.

The CGG is about 0.35 M multiply-adds per tile (5.5 M for k = 4); in eager PyTorch much of its
time is per-op dispatch and kernel set-up, not arithmetic. The module is exported once, in
memory, with the batch fixed at k*k for each k (fully static shapes let ONNX Runtime plan
every buffer ahead), and run on one intra-op thread that sleeps when idle (as the gate node
runs it, whatever PyTorch's thread count). Both backends take the 8-bit tiles (`gate_tiles`: the
box resize and the split, as in training); the ONNX graph starts with the normalisation, so the
8-bit tiles go straight into the session (side by side about 0.05 ms less per frame at k = 4
than normalising in PyTorch first). `time_gate` (`neulens-bench gate`, the training's
evaluation) measures both side by side.
"""

from __future__ import annotations

import io
import itertools
import warnings
from typing import Any, Callable, Mapping, Sequence

import numpy as np
import torch

from neulens_ros.errors import BackendError
from neulens_ros.gate.cgg import (GATE_INPUT, CompressionGuidingGate, GateNet, gate_tiles,
                                  normalise_tiles, run_gate)
from neulens_ros.levels import TILE_GRIDS
from neulens_ros.runtime.backends import OPSET, ort_session_options
from neulens_ros.runtime.timing import round_robin_ms

GATE_BACKENDS = ('torch', 'onnxruntime')


class NormalisingGate(torch.nn.Module):
    """[T, 3, 28, 28] uint8 gate tiles -> [T, R] logits: the module behind the normalisation
    (the torch backend, and what the ONNX export traces)."""

    def __init__(self, gate: CompressionGuidingGate) -> None:
        super().__init__()
        self.gate = gate

    def forward(self, tiles: np.ndarray | torch.Tensor) -> torch.Tensor:
        return self.gate(normalise_tiles(tiles))


class OrtGate:
    """[k*k, 3, 28, 28] uint8 gate tiles -> [k*k, R] logits, one static session per k."""

    def __init__(self, gate: CompressionGuidingGate, ks: tuple[int, ...] = TILE_GRIDS,
                 threads: int = 1) -> None:
        try:
            import onnxruntime as ort
        except ImportError as exc:  # a pinned dependency; only a broken install lands here
            raise BackendError(f'gate backend onnxruntime: cannot import onnxruntime ({exc}); '
                               f'use gate backend torch') from exc
        gate = gate.eval()
        options = ort_session_options(ort, threads)
        self.sessions: dict[int, Any] = {
            k: ort.InferenceSession(_export(gate, k * k), options,
                                    providers=['CPUExecutionProvider'])
            for k in ks}

    def __call__(self, tiles: np.ndarray) -> torch.Tensor:
        k = round(tiles.shape[0] ** 0.5)
        session = self.sessions.get(k)
        if session is None or k * k != tiles.shape[0]:
            raise BackendError(f'gate backend onnxruntime has sessions for k in '
                               f'{sorted(self.sessions)}, not for {tiles.shape[0]} tiles')
        x = np.asarray(tiles)
        if x.dtype != np.uint8:  # normalised floats cast to 8 bits would be noise
            raise BackendError(f'gate backend onnxruntime takes uint8 gate tiles (gate_tiles), '
                               f'got {x.dtype}')
        return torch.from_numpy(session.run(None, {'tiles': np.ascontiguousarray(x)})[0])


def _export(gate: CompressionGuidingGate, batch: int) -> bytes:
    """ONNX bytes of `gate` behind the normalisation for a [batch, 3, 28, 28] uint8 input."""
    buffer = io.BytesIO()
    example = torch.zeros(batch, 3, GATE_INPUT, GATE_INPUT, dtype=torch.uint8)
    with torch.no_grad(), warnings.catch_warnings():
        if gate.context:  # it reads k from the batch: a constant of this static session
            warnings.simplefilter('ignore', torch.jit.TracerWarning)
        torch.onnx.export(NormalisingGate(gate), (example,), buffer, input_names=['tiles'],
                          output_names=['logits'], opset_version=OPSET, dynamo=False)
    return buffer.getvalue()


Step = Callable[[np.ndarray, int], Any]  # (network input [H, W, 3] uint8, k) -> anything


def time_gate(nets: Mapping[str, GateNet], images: Sequence[np.ndarray],
              ks: Sequence[int] = TILE_GRIDS, rounds: int = 100,
              steps: Mapping[str, Step] | None = None) -> dict[str, dict[str, float]]:
    """{'k<k>': {name: ms, 'inputs': ms}}: the median cost of `run_gate` per frame for each
    net, of its inputs alone and of each of `steps` (e.g. the gate with a temporal prior),
    timed round robin; each call takes the next of `images` ([H, W, 3] uint8 network inputs),
    so caches are as cold as for a new camera frame."""
    cursor = itertools.count()
    named: dict[str, Step] = {name: lambda img, k, net=net: run_gate(net, img, k)
                              for name, net in nets.items()}
    named['inputs'] = gate_tiles
    named.update(steps or {})
    funcs: dict[tuple[str, int], Callable[[], Any]] = {
        (name, k): lambda step=step, k=k: step(images[next(cursor) % len(images)], k)
        for k in ks for name, step in named.items()}
    times = round_robin_ms(funcs, rounds, warmup=5)
    return {f'k{k}': {name: times[(name, k)] for name in named} for k in ks}


def gate_net(gate: CompressionGuidingGate, backend: str, ks: tuple[int, ...] = TILE_GRIDS
             ) -> GateNet:
    """The network `run_gate` calls on 8-bit tiles: the module behind the normalisation, or
    its ONNX Runtime twin."""
    if backend not in GATE_BACKENDS:
        raise BackendError(f'gate backend {backend!r} is not one of {GATE_BACKENDS}')
    return NormalisingGate(gate).eval() if backend == 'torch' else OrtGate(gate, ks)
