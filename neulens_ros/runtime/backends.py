"""Inference backends for the per-level fronts: eager PyTorch, TorchScript, ONNX Runtime,
TensorRT.

Each computed level of each front becomes a static network (the slimmable layers fixed at
that level) with a dynamic batch axis 1..k*k and dynamic tile height/width, so the executor's
one-call-per-level batches run on it directly. ONNX Runtime and TensorRT share the export and
the cache key: a file per (model hash, P, level, opset) under the cache folder, so what is
tested here on ONNX Runtime is exactly what TensorRT would parse. ONNX Runtime also gets one
file per tile size the grids of the model's halo use (only the batch axis dynamic): with the
spatial size fixed it plans memory and picks kernels ahead, which made narrow levels of a
tiled ResNet-50 front 10-20% faster; optionally one file per batch size too and one for the
whole frame (fully static shapes, 1.25-2.3x faster again); other shapes (another halo) run
on the dynamic file. TensorRT is imported only
when present; everything else runs on the CPU. TorchScript traces each level's static network
and freezes it (weights become constants, BatchNorm folded into the convolutions, no Python
per layer), which removes most of the per-call overhead of the slimmable layers.
"""

from __future__ import annotations

import hashlib
import os
from pathlib import Path
from typing import Any, Callable, Iterable, Mapping

import numpy as np
import torch
from torch import nn

from neulens_ros.errors import BackendError
from neulens_ros.levels import TILE_GRIDS
from neulens_ros.runtime import BACKENDS
from neulens_ros.supernet.detector import P_OPTIONS, TileDetector
from neulens_ros.supernet.slim import COMPUTED_LEVELS, set_level
from neulens_ros.supernet.tiling import tile_grid, window_chain

OPSET = 17
Runner = Callable[[torch.Tensor], torch.Tensor]
Runners = dict[str, dict[int, Runner]]  # P -> level -> runner


def cache_root(cache_dir: str) -> Path:
    if cache_dir:
        return Path(cache_dir)
    base = os.environ.get('XDG_CACHE_HOME') or str(Path.home() / '.cache')
    return Path(base) / 'neulens_ros'


def model_hash(model: nn.Module) -> str:
    """Hash of the architecture and every tensor's bytes (changes when weights change)."""
    digest = hashlib.sha256(repr(model).encode())
    for name, tensor in model.state_dict().items():
        digest.update(name.encode())
        digest.update(tensor.detach().cpu().contiguous().numpy().tobytes())
    return digest.hexdigest()[:16]


class LevelFront(nn.Module):
    """A front frozen at one level: a plain module for export."""

    def __init__(self, front: nn.Module, level: int) -> None:
        super().__init__()
        self.front = front
        self.level = level

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        set_level(self.front, self.level)
        try:
            return self.front(x)
        finally:
            set_level(self.front, 0)


def export_onnx(front: nn.Module, level: int, path: Path, example_hw: tuple[int, int],
                dynamic_hw: bool = True, batch: int | None = None) -> Path:
    """ONNX file of `front` at `level` (cached): height/width dynamic unless `dynamic_hw` is
    False (then fixed at `example_hw`), the batch dynamic unless `batch` fixes it."""
    if path.is_file() and path.stat().st_size > 0:
        return path
    path.parent.mkdir(parents=True, exist_ok=True)
    example = torch.zeros(batch or 2, 3, *example_hw)
    axes_in = ({} if batch else {0: 'n'}) | ({2: 'h', 3: 'w'} if dynamic_hw else {})
    axes_out = ({} if batch else {0: 'n'}) | ({2: 'fh', 3: 'fw'} if dynamic_hw else {})
    tmp = path.with_suffix('.tmp.onnx')
    with torch.no_grad():
        torch.onnx.export(LevelFront(front, level).eval(), (example,), str(tmp),
                          input_names=['tiles'], output_names=['features'], opset_version=OPSET,
                          dynamic_axes={'tiles': axes_in, 'features': axes_out}, dynamo=False)
    tmp.replace(path)
    return path


def onnx_paths(fronts: Mapping[str, nn.Module], tag: str, cache_dir: str
               ) -> dict[tuple[str, int], Path]:
    """Cache file of every (P, level); `tag` identifies the weights (model_hash)."""
    root = cache_root(cache_dir) / f'onnx_{tag}'
    return {(p, lv): root / f'{p}_level{lv}_opset{OPSET}.onnx'
            for p in fronts for lv in COMPUTED_LEVELS}


Shape = tuple[int | None, int, int]  # (batch or None = any batch, height, width)


def static_path(dynamic: Path, shape: Shape) -> Path:
    """Cache file of the same (P, level) with the input shape fixed (but for a None batch)."""
    n, h, w = shape
    suffix = f'_{h}x{w}' if n is None else f'_n{n}_{h}x{w}'
    return dynamic.with_name(dynamic.name.replace('.onnx', f'{suffix}.onnx'))


def tile_shapes(fronts: Mapping[str, nn.Module], full_hw: tuple[int, int],
                ks: Iterable[int] = TILE_GRIDS, batches: bool = False, halo: str = 'paper'
                ) -> dict[str, set[Shape]]:
    """P -> the input shapes of the grids for `ks` with `halo`: each tile size with any
    batch, and with `batches` also every batch size 1..k*k of it and the whole frame
    (1, H, W)."""
    shapes: dict[str, set[Shape]] = {}
    for p, front in fronts.items():
        chain = window_chain(front)
        shapes[p] = {(1, *full_hw)} if batches else set()
        for k in ks:
            grid = tile_grid(chain, full_hw[1], full_hw[0], k, halo)
            for w, h in {grid.tile_input_size(t) for t in range(len(grid.in_rects))}:
                shapes[p].add((None, h, w))
                if batches:
                    shapes[p].update((n, h, w) for n in range(1, k * k + 1))
    return shapes


def ort_runners(fronts: Mapping[str, nn.Module], tag: str, cache_dir: str,
                full_hw: tuple[int, int], threads: int = 0,
                shapes: Mapping[str, set[Shape]] | None = None) -> Runners:
    """An OrtRunner per (P, level): the dynamic-shape session plus one per input shape in
    `shapes` (P -> {(batch or None, height, width)}, default none)."""
    try:
        import onnxruntime as ort
    except ImportError as exc:
        raise BackendError('backend onnxruntime needs the onnxruntime package: '
                           'pip install onnxruntime') from exc
    options = ort_session_options(ort, threads)

    def session(p: str, lv: int, path: Path, shape: Shape, dynamic_hw: bool) -> Any:
        n, h, w = shape
        export_onnx(fronts[p], lv, path, (h, w), dynamic_hw, n)
        try:
            return ort.InferenceSession(str(path), options, providers=['CPUExecutionProvider'])
        except Exception:  # noqa: BLE001 - a damaged cache file: rebuild it once
            path.unlink(missing_ok=True)
            export_onnx(fronts[p], lv, path, (h, w), dynamic_hw, n)
            return ort.InferenceSession(str(path), options, providers=['CPUExecutionProvider'])

    example: Shape = (None, full_hw[0] // 2, full_hw[1] // 2)
    runners: Runners = {p: {} for p in fronts}
    for (p, lv), path in onnx_paths(fronts, tag, cache_dir).items():
        sized = {shape: session(p, lv, static_path(path, shape), shape, False)
                 for shape in sorted((shapes or {}).get(p, ()), key=str)}
        runners[p][lv] = OrtRunner(session(p, lv, path, example, True), sized)
    return runners


def ort_session_options(ort: Any, threads: int) -> Any:
    """ONNX Runtime session options: `threads` intra-op threads (0 = its default) that sleep
    when idle. Spinning idle workers (ONNX Runtime's default) take the cores the next call and
    the rest of the process need; on 2 CPU cores that made tiled ResNet-50 fronts 1.2-2x slower
    per call and narrow levels slower than level 0 (docs/benchmarks.md)."""
    options = ort.SessionOptions()
    if threads:
        options.intra_op_num_threads = threads
    options.add_session_config_entry('session.intra_op.allow_spinning', '0')
    return options


class OrtRunner:
    """[N, 3, h, w] tiles -> features on the session made for exactly that shape, else the
    one made for that tile size (any batch), else the dynamic-shape session."""

    def __init__(self, dynamic: Any, sized: Mapping[Shape, Any]) -> None:
        self.dynamic = dynamic
        self.sized = dict(sized)  # (batch or None, height, width) -> session

    def __call__(self, x: torch.Tensor) -> torch.Tensor:
        n, h, w = (int(x.shape[0]), int(x.shape[2]), int(x.shape[3]))
        session = self.sized.get((n, h, w)) or self.sized.get((None, h, w)) or self.dynamic
        out = session.run(None, {'tiles': x.detach().cpu().numpy().astype(np.float32,
                                                                            copy=False)})[0]
        return torch.from_numpy(out)


def ts_runners(fronts: Mapping[str, nn.Module], full_hw: tuple[int, int]) -> Runners:
    """Frozen TorchScript module of every (P, level), traced on a half-frame tile batch (the
    traced graph takes any batch and tile size: only the level is baked in)."""
    example = torch.zeros(2, 3, full_hw[0] // 2, full_hw[1] // 2)
    runners: Runners = {p: {} for p in fronts}
    with torch.inference_mode(False), torch.no_grad():
        for p, front in fronts.items():
            for lv in COMPUTED_LEVELS:
                traced = torch.jit.trace(LevelFront(front, lv).eval(), example,
                                         check_trace=False)
                runners[p][lv] = torch.jit.freeze(traced)
    return runners


def tensorrt_available() -> tuple[bool, str]:
    try:
        import tensorrt  # noqa: F401
    except ImportError:
        return False, 'TensorRT is not installed (pip install tensorrt on an NVIDIA GPU host)'
    if not torch.cuda.is_available():
        return False, 'TensorRT is installed but no CUDA device is visible'
    return True, ''


def trt_runners(fronts: Mapping[str, nn.Module], tag: str, cache_dir: str, precision: str,
                max_batch: int, full_hw: tuple[int, int]) -> Runners:
    """TensorRT engines from the shared ONNX files (see runtime/tensorrt.py)."""
    ok, reason = tensorrt_available()
    if not ok:
        raise BackendError(f'backend tensorrt: {reason}')
    from neulens_ros.runtime.tensorrt import build_runner
    runners: Runners = {p: {} for p in fronts}
    for (p, lv), path in onnx_paths(fronts, tag, cache_dir).items():
        export_onnx(fronts[p], lv, path, (full_hw[0] // 2, full_hw[1] // 2))
        runners[p][lv] = build_runner(path, precision, max_batch, full_hw)
    return runners


def front_runners(fronts: Mapping[str, nn.Module], tag: str, backend: str, precision: str,
                  cache_dir: str, max_batch: int, full_hw: tuple[int, int],
                  shapes: Mapping[str, set[Shape]] | None = None) -> tuple[str, Runners]:
    """(backend actually used, per-P per-level runners; empty = eager slimmable fronts).
    `shapes` (P -> {(batch or None, height, width)}) get shape-specialised ONNX Runtime
    sessions."""
    if backend not in BACKENDS:
        raise BackendError(f'unknown backend {backend!r}; choose one of {BACKENDS}')
    if backend == 'auto':
        backend = 'tensorrt' if tensorrt_available()[0] else 'torch'
    if backend != 'tensorrt' and precision == 'fp16':
        raise BackendError(f'precision fp16 needs the tensorrt backend; {backend} runs fp32')
    if backend == 'torch':
        return 'torch', {}
    if backend == 'torchscript':
        return 'torchscript', ts_runners(fronts, full_hw)
    if backend == 'onnxruntime':
        return 'onnxruntime', ort_runners(fronts, tag, cache_dir, full_hw,
                                          torch.get_num_threads(), shapes)
    return 'tensorrt', trt_runners(fronts, tag, cache_dir, precision, max_batch, full_hw)


def make_runners(model: TileDetector, backend: str, precision: str, cache_dir: str,
                 max_batch: int, static_batches: bool = False,
                 ks: Iterable[int] = TILE_GRIDS, halo: str = 'paper') -> tuple[str, Runners]:
    """Runners for the detector's fronts at every split point. ONNX Runtime sessions are also
    specialised to the tile sizes of the grids `ks` with `halo` (the halo the model runs
    with, its metadata's) and, with `static_batches`, to every batch size of them: fully
    static shapes ran 1.25-2.3x faster, for up to k*k + 2 sessions per (P, level, tile size)
    built at start-up (exports cached on disk)."""
    cfg = model.config
    fronts = {p: model.front(p) for p in P_OPTIONS}
    full_hw = (cfg.input_height, cfg.input_width)
    shapes = (tile_shapes(fronts, full_hw, tuple(ks), static_batches, halo)
              if backend == 'onnxruntime' else None)
    return front_runners(fronts, model_hash(model), backend, precision, cache_dir, max_batch,
                         full_hw, shapes)
