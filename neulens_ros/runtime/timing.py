"""Wall-clock timing for benchmarks and profiles on a shared, noisy CPU.

Variants are timed round robin (every round runs each variant once) and reported as medians,
so a slow spell of the machine hits all of them alike instead of whichever ran during it.
"""

from __future__ import annotations

import time
from typing import Any, Callable, Mapping, TypeVar

import numpy as np
import torch

from neulens_ros.errors import ConfigError

Key = TypeVar('Key')


def round_robin_ms(funcs: Mapping[Key, Callable[[], Any]], rounds: int, warmup: int = 2
                   ) -> dict[Key, float]:
    """Median milliseconds per function over `rounds` round-robin rounds, after `warmup`
    untimed rounds (inference mode)."""
    if rounds < 1 or warmup < 0:
        raise ConfigError(f'round_robin_ms needs rounds >= 1 and warmup >= 0, got {rounds}, '
                          f'{warmup}')
    times: dict[Key, list[float]] = {key: [] for key in funcs}
    with torch.inference_mode():
        for _ in range(warmup):
            for fn in funcs.values():
                fn()
        for _ in range(rounds):
            for key, fn in funcs.items():
                start = time.perf_counter()
                fn()
                times[key].append(1e3 * (time.perf_counter() - start))
    return {key: float(np.median(v)) for key, v in times.items()}
