"""The link bridge process: two TAP devices, Ethernet frames forwarded both ways through the
emulated link (rate, delay, loss, bounded queue).

    python -m neulens_ros.link.bridge --tap-a nlA123 --tap-b nlB123 --preset average \
        --stats stats.json

It creates both TAP devices (they live as long as this process holds them), prints 'ready'
on stdout, and forwards until SIGINT/SIGTERM or until its parent dies (PR_SET_PDEATHSIG), then
writes the per-direction counters as JSON. Needs CAP_NET_ADMIN (root) and /dev/net/tun.
"""

from __future__ import annotations

import argparse
import ctypes
import fcntl
import json
import os
import select
import signal
import struct
import sys
import time
from dataclasses import replace
from pathlib import Path

from neulens_ros.link.scheduler import PRESETS, DirectionScheduler

TUNSETIFF = 0x400454CA
IFF_TAP = 0x0002
IFF_NO_PI = 0x1000
PR_SET_PDEATHSIG = 1
MAX_FRAME = 65536


def open_tap(name: str) -> int:
    """A file descriptor for a new TAP device `name` (<= 15 characters)."""
    if len(name) > 15:
        raise ValueError(f'interface name {name!r} is longer than 15 characters')
    fd = os.open('/dev/net/tun', os.O_RDWR | os.O_NONBLOCK)
    fcntl.ioctl(fd, TUNSETIFF, struct.pack('16sH', name.encode(), IFF_TAP | IFF_NO_PI))
    return fd


def die_with_parent() -> None:
    libc = ctypes.CDLL(None, use_errno=True)
    libc.prctl(PR_SET_PDEATHSIG, signal.SIGTERM)


def forward(fds: dict[str, int], schedulers: dict[str, DirectionScheduler],
            stop: list[bool]) -> None:
    """Forward frames a->b and b->a until `stop[0]` is set."""
    other = {'a': 'b', 'b': 'a'}
    by_fd = {fd: side for side, fd in fds.items()}
    while not stop[0]:
        releases = [t for t in (s.next_release() for s in schedulers.values())
                    if t is not None]
        timeout = max(0.0, min(releases) - time.monotonic()) if releases else 0.05
        try:
            readable, _, _ = select.select(list(by_fd), [], [], min(timeout, 0.05))
        except InterruptedError:
            continue
        now = time.monotonic()
        for fd in readable:
            side = by_fd[fd]
            try:
                frame = os.read(fd, MAX_FRAME)
            except BlockingIOError:
                continue
            schedulers[f'{side}>{other[side]}'].offer(frame, now)
        for direction, sched in schedulers.items():
            target = fds[direction[-1]]
            for frame in sched.due(time.monotonic()):
                try:
                    os.write(target, frame)
                except OSError:  # the device went down: the frame is lost like on air
                    sched.stats['lost'] += 1


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument('--tap-a', required=True)
    parser.add_argument('--tap-b', required=True)
    parser.add_argument('--preset', choices=sorted(PRESETS), default='average')
    parser.add_argument('--rate-mbps', type=float, default=None)
    parser.add_argument('--delay-ms', type=float, default=None)
    parser.add_argument('--loss', type=float, default=None)
    parser.add_argument('--seed', type=int, default=0)
    parser.add_argument('--stats', type=Path, default=None)
    args = parser.parse_args(argv)
    overrides = {k: v for k, v in (('rate_mbps', args.rate_mbps), ('delay_ms', args.delay_ms),
                                   ('loss', args.loss)) if v is not None}
    config = replace(PRESETS[args.preset], **overrides)
    die_with_parent()
    fds = {'a': open_tap(args.tap_a), 'b': open_tap(args.tap_b)}
    schedulers = {'a>b': DirectionScheduler(config, args.seed),
                  'b>a': DirectionScheduler(config, args.seed + 1)}
    stop = [False]

    def on_signal(*_: object) -> None:
        stop[0] = True
    signal.signal(signal.SIGTERM, on_signal)
    signal.signal(signal.SIGINT, on_signal)
    print('ready', flush=True)
    try:
        forward(fds, schedulers, stop)
    finally:
        for fd in fds.values():
            os.close(fd)
        stats = {'config': config.__dict__, **{d: s.stats for d, s in schedulers.items()}}
        if args.stats is not None:
            args.stats.write_text(json.dumps(stats, indent=1))
    return 0


if __name__ == '__main__':
    sys.exit(main())
