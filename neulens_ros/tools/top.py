"""neulens-top: a live terminal view of a running pipeline.

    neulens-top                          # until Ctrl-C, refreshed twice a second
    neulens-top --namespace robot1 --duration 30 --plain   # 30 s, plain text (logs, pipes)

Subscribes to the StageTiming and TileDecision topics (never to the images or tiles) and
shows, per stage, frames per second, p50 / p90 latency and bytes out per frame over the last
200 frames, and below it the SLO in force, DEMUX's latest choice (P, k, level histogram,
predicted latency), the link estimate it used and how many decisions were flagged as not
fitting the SLO.
"""

from __future__ import annotations

import argparse
import sys
import time

from neulens_ros.report.frames import stage_record
from neulens_ros.report.live import LiveStats, plain, render


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog='neulens-top', description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument('--namespace', default='', help='namespace of the pipeline')
    parser.add_argument('--timing-topic', default='neulens/stage_timing')
    parser.add_argument('--decision-topic', default='neulens/tile_decision')
    parser.add_argument('--duration', type=float, default=0.0,
                        help='stop after this many seconds (0 = until Ctrl-C)')
    parser.add_argument('--refresh', type=float, default=0.5, help='seconds between updates')
    parser.add_argument('--plain', action='store_true',
                        help='print plain text (default when the output is not a terminal)')
    return parser


def topic(namespace: str, name: str) -> str:
    return f'/{namespace.strip("/")}/{name}' if namespace.strip('/') else f'/{name}'


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    import rclpy
    from rclpy.executors import SingleThreadedExecutor
    from rclpy.qos import qos_profile_sensor_data

    from neulens_msgs.msg import StageTiming, TileDecision
    from neulens_ros.nodes.stage_timing import TIMING_QOS

    stats = LiveStats()

    def on_timing(msg: StageTiming) -> None:
        rec = stage_record(msg)
        stats.add_timing(msg.stage, rec.latency_ms, rec.bytes_out, time.monotonic(),
                         rec.dropped)

    def on_decision(msg: TileDecision) -> None:
        stats.add_decision(k=msg.k, p_layers=msg.p_layers, levels=list(msg.levels),
                           policy=msg.policy, latency_slo_ms=msg.latency_slo_ms,
                           predicted_latency_ms=msg.predicted_latency_ms,
                           fits_slo=msg.fits_slo, bandwidth_mbps=msg.bandwidth_mbps,
                           rtt_ms=msg.rtt_ms)

    rclpy.init()
    node = rclpy.create_node('neulens_top')
    node.create_subscription(StageTiming, topic(args.namespace, args.timing_topic), on_timing,
                             TIMING_QOS)
    node.create_subscription(TileDecision, topic(args.namespace, args.decision_topic),
                             on_decision, qos_profile_sensor_data)
    executor = SingleThreadedExecutor()
    executor.add_node(node)
    end = time.monotonic() + args.duration if args.duration > 0 else float('inf')
    use_plain = args.plain or not sys.stdout.isatty()
    try:
        if use_plain:
            next_print = time.monotonic()
            while time.monotonic() < end:
                executor.spin_once(timeout_sec=0.05)
                if time.monotonic() >= next_print:
                    print(plain(stats, time.monotonic()) + '\n', flush=True)
                    next_print = time.monotonic() + max(args.refresh, 1.0)
        else:
            from rich.live import Live
            with Live(render(stats, time.monotonic()), refresh_per_second=4) as live:
                while time.monotonic() < end:
                    stop = time.monotonic() + args.refresh
                    while time.monotonic() < min(stop, end):
                        executor.spin_once(timeout_sec=0.05)
                    live.update(render(stats, time.monotonic()))
    except KeyboardInterrupt:
        pass
    finally:
        print(plain(stats, time.monotonic()), flush=True)
        executor.shutdown()
        node.destroy_node()
        rclpy.try_shutdown()
    return 0


if __name__ == '__main__':
    raise SystemExit(main())
