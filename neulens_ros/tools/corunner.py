"""A co-running DNN inference job on the edge, for `neulens-bench slo`'s contention run (paper
7.5): the detector untiled at full width, run back to back during the on phases of a duty
cycle and idle during the off phases, on its own thread(s), in its own process.

    python -m neulens_ros.tools.corunner --seconds 30 --on 1.5 --off 1.0 --threads 1

It loads the model, runs one warm-up inference, prints `ready <t0>` (t0: time.monotonic() at
which the first on phase starts; the same clock in every process, so the bench labels its
frames with the phase) and stops by itself `seconds` after t0, printing the inferences it ran
as JSON. The bench starts it and ends it by PID.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from dataclasses import dataclass

import torch

from neulens_ros.errors import ConfigError
from neulens_ros.models.zoo import DETECTOR, load_detector


@dataclass(frozen=True)
class DutyCycle:
    """On for `on_s` seconds, then off for `off_s`, repeating from t0."""

    on_s: float
    off_s: float

    def __post_init__(self) -> None:
        if self.on_s <= 0 or self.off_s < 0:
            raise ConfigError(f'a duty cycle needs on > 0 s and off >= 0 s (got on {self.on_s}'
                              f' s, off {self.off_s} s)')

    def is_on(self, since_t0: float) -> bool:
        """Whether the job runs `since_t0` seconds after t0 (before t0: not yet)."""
        return since_t0 >= 0 and since_t0 % (self.on_s + self.off_s) < self.on_s


@torch.inference_mode()
def run(detector: str, cycle: DutyCycle, seconds: float, threads: int) -> int:
    """Inferences run; prints `ready <t0>` once warmed up."""
    torch.set_num_threads(threads)
    model, _ = load_detector(detector)
    cfg = model.config
    image = torch.randn(1, 3, cfg.input_height, cfg.input_width)
    model(image)  # warm-up
    t0 = time.monotonic()
    print(f'ready {t0:.6f}', flush=True)
    count = 0
    while (now := time.monotonic()) < t0 + seconds:
        if cycle.is_on(now - t0):
            model(image)
            count += 1
        else:  # sleep to the next on phase (or the end)
            period = cycle.on_s + cycle.off_s
            wake = t0 + ((now - t0) // period + 1) * period
            time.sleep(max(0.0, min(wake, t0 + seconds) - now))
    return count


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog='python -m neulens_ros.tools.corunner',
                                     description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument('--seconds', type=float, required=True, help='runs this long, then ends')
    parser.add_argument('--on', type=float, default=1.5, help='seconds of each on phase')
    parser.add_argument('--off', type=float, default=1.0, help='seconds of each off phase')
    parser.add_argument('--threads', type=int, default=1)
    parser.add_argument('--detector', default=DETECTOR, help='detector checkpoint')
    args = parser.parse_args(argv)
    if args.seconds <= 0 or args.threads < 1:
        parser.error('--seconds must be > 0 and --threads >= 1')
    try:
        count = run(args.detector, DutyCycle(args.on, args.off), args.seconds, args.threads)
    except ConfigError as exc:
        parser.error(str(exc))
    print(json.dumps({'inferences': count}), flush=True)
    return 0


if __name__ == '__main__':
    sys.exit(main())
