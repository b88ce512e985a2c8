"""TensorRT engines for the per-level fronts (NVIDIA GPUs; imported only when present).

Written against TensorRT's documented Python API (10.x): the ONNX file shared with the ONNX
Runtime path is parsed with trt.OnnxParser, one optimisation profile covers batches 1..k*k
and tile sizes up to the full input, FP16 is enabled for precision 'fp16', and the serialised
engine is cached next to the ONNX file under a key of TensorRT version, GPU name and compute
capability, precision, ONNX hash and profile, so a cache never outlives a TensorRT upgrade or
a different GPU. Runs use torch CUDA tensors as I/O buffers (execute_async_v3).
"""

from __future__ import annotations

import hashlib
from pathlib import Path
from typing import Callable

import torch

from neulens_ros.errors import BackendError


def engine_key(onnx_path: Path, precision: str, max_batch: int, full_hw: tuple[int, int]
               ) -> str:
    import tensorrt as trt
    props = torch.cuda.get_device_properties(0)
    text = '|'.join([trt.__version__, props.name, f'{props.major}.{props.minor}', precision,
                     hashlib.sha256(onnx_path.read_bytes()).hexdigest()[:16], str(max_batch),
                     f'{full_hw[0]}x{full_hw[1]}'])
    return hashlib.sha256(text.encode()).hexdigest()[:20]


def build_engine(onnx_path: Path, precision: str, max_batch: int, full_hw: tuple[int, int]
                 ) -> bytes:
    import tensorrt as trt
    logger = trt.Logger(trt.Logger.WARNING)
    builder = trt.Builder(logger)
    network = builder.create_network(0)
    parser = trt.OnnxParser(network, logger)
    if not parser.parse(onnx_path.read_bytes()):
        errors = '; '.join(str(parser.get_error(i)) for i in range(parser.num_errors))
        raise BackendError(f'TensorRT cannot parse {onnx_path}: {errors}')
    config = builder.create_builder_config()
    if precision == 'fp16':
        config.set_flag(trt.BuilderFlag.FP16)
    profile = builder.create_optimization_profile()
    h, w = full_hw
    profile.set_shape('tiles', (1, 3, 16, 16), (max(1, max_batch // 2), 3, h // 2, w // 2),
                      (max_batch, 3, h, w))
    config.add_optimization_profile(profile)
    engine = builder.build_serialized_network(network, config)
    if engine is None:
        raise BackendError(f'TensorRT failed to build an engine from {onnx_path}')
    return bytes(engine)


def build_runner(onnx_path: Path, precision: str, max_batch: int, full_hw: tuple[int, int]
                 ) -> Callable[[torch.Tensor], torch.Tensor]:
    """A runner [N, 3, h, w] -> features, from the engine cache or freshly built."""
    import tensorrt as trt
    cache = onnx_path.with_name(
        f'{onnx_path.stem}_{engine_key(onnx_path, precision, max_batch, full_hw)}.engine')
    if cache.is_file():
        blob = cache.read_bytes()
    else:
        blob = build_engine(onnx_path, precision, max_batch, full_hw)
        cache.write_bytes(blob)
    runtime = trt.Runtime(trt.Logger(trt.Logger.WARNING))
    engine = runtime.deserialize_cuda_engine(blob)
    if engine is None:  # a damaged cache file
        cache.unlink(missing_ok=True)
        blob = build_engine(onnx_path, precision, max_batch, full_hw)
        cache.write_bytes(blob)
        engine = runtime.deserialize_cuda_engine(blob)
    context = engine.create_execution_context()
    stream = torch.cuda.Stream()

    def run(x: torch.Tensor) -> torch.Tensor:
        tiles = x.to('cuda', torch.float32).contiguous()
        context.set_input_shape('tiles', tuple(tiles.shape))
        out = torch.empty(tuple(context.get_tensor_shape('features')), device='cuda',
                          dtype=torch.float32)
        context.set_tensor_address('tiles', tiles.data_ptr())
        context.set_tensor_address('features', out.data_ptr())
        context.execute_async_v3(stream.cuda_stream)
        stream.synchronize()
        return out.to(x.device)
    return run
