"""neulens-demo: the main job. Runs the pipeline on bundled sample data, records a bag and
prints what happened and where the bag and the report went.

    neulens-demo                       # 30 generated frames at 5 Hz, bag + report in out/demo
    neulens-demo --frames 100 --rate 10 --source sample
    neulens-demo --source walk         # a camera walking through a room (hard preset)
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import time
from datetime import datetime
from pathlib import Path
from typing import Any

from neulens_ros.bag.reader import message_counts
from neulens_ros.data.sequence import WALK_PRESETS
from neulens_ros.errors import NeulensError
from neulens_ros.launching import ProcessGroup, dds_environment, node_command
from neulens_ros.models.names import DEFAULT_PRESET, DETECTOR
from neulens_ros.report.frames import load_frames
from neulens_ros.report.node_logs import agreement, read_timing_logs
from neulens_ros.report.render import write_report
from neulens_ros.report.summary import summarize
from neulens_ros.topology import load_topology

WALK_RENDER_S = 1.0  # seconds to render a walk's frame at 640 x 480 on a busy 2-core machine


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog='neulens-demo', description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument('--out', type=Path, default=Path('out/demo'),
                        help='folder for the bag, logs and report')
    parser.add_argument('--frames', type=int, default=30, help='frames to run')
    parser.add_argument('--rate', type=float, default=5.0, help='source rate, Hz')
    parser.add_argument('--source', choices=('generated', 'sample', 'walk'), default='generated',
                        help='generated scenes (with ground truth), the Middlebury sample or a '
                             'camera walking through a room (with ground truth and track ids)')
    parser.add_argument('--domain-id', type=int, default=None, help='ROS_DOMAIN_ID to use')
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    run_dir = args.out / datetime.now().strftime('%Y%m%d_%H%M%S')
    bag = run_dir / 'bag'
    overrides = {
        'source': source_overrides(args),
        'recorder': {'output_dir': str(run_dir), 'bag_name': 'bag'},
        'gate': gate_overrides(args),
        **{name: {'log_timing': True} for name in ('supernet', 'lifting')},
    }
    nodes = [n for n in load_topology()]
    env = dds_environment(args.domain_id)
    others = running_already(env, [f'/{n.name}' for n in nodes])
    if others:
        domain = env.get('ROS_DOMAIN_ID', '0')
        print(f'neulens-demo: ROS domain {domain} already has {", ".join(others)}: their '
              "messages would mix with the demo's. Stop them, or run the demo on a free "
              'domain: neulens-demo --domain-id 42', file=sys.stderr)
        return 1
    group = ProcessGroup(env=env, log_dir=run_dir / 'logs')
    print(f'neulens-demo: {args.frames} {args.source} frames at {args.rate} Hz through '
          f'{", ".join(n.name for n in nodes)}')
    if args.source == 'walk' and DEFAULT_PRESET not in WALK_PRESETS:
        print(f'neulens-demo: walks are {"/".join(WALK_PRESETS)}-preset frames; the detector '
              f'{DETECTOR} was trained on the {DEFAULT_PRESET} preset')
    started = time.monotonic()
    try:
        for node in nodes:  # the source last, once the edge serves (frames are not lost)
            if node.name != 'source':
                group.start(node.name, node_command(node, '', overrides.get(node.name)))
        edge_ready = wait_until_active(dict(group.env), 'supernet', timeout_s=120.0)
        if not edge_ready:
            print('neulens-demo: the supernet node did not become active within 120 s; '
                  'starting the source anyway (see logs/supernet.log)')
        source = next(n for n in nodes if n.name == 'source')
        group.start('source', node_command(source, '', overrides.get('source')))
        limit = 30.0 + 3.0 * args.frames / args.rate + (
            WALK_RENDER_S * args.frames if args.source == 'walk' else 0.0)
        code = group.wait('source', timeout=limit)
        if code is None:
            print(f'neulens-demo: the source did not finish within {limit:.0f} s; stopping')
        time.sleep(2.0)  # let the last frame travel through the graph into the bag
    finally:
        codes = group.stop()
    failed = {n: c for n, c in codes.items() if c not in (0, -2)}
    counts = message_counts(bag) if (bag / 'metadata.yaml').is_file() else {}
    print(f'neulens-demo: finished in {time.monotonic() - started:.1f} s')
    for topic, count in sorted(counts.items()):
        print(f'  {topic:40s} {count:6d} messages')
    report = print_report(bag, run_dir / 'report', run_dir / 'logs') if counts else None
    print(f'bag:    {bag.resolve()}')
    if report is not None:
        print(f'report: {report.resolve()}')
    print(f'logs:   {(run_dir / "logs").resolve()}')
    if failed:
        print(f'neulens-demo: nodes failed: {failed} (see their logs)')
        return 1
    return 0 if counts else 1


def source_overrides(args: argparse.Namespace) -> dict[str, Any]:
    """The source node's parameters for the demo: a walk is rendered whole before its first
    frame is sent (it stays continuous), in a preset that has walks."""
    values = {'num_frames': args.frames, 'rate_hz': args.rate, 'source': args.source,
              'start_delay_s': 1.0, 'wait_for_subscribers': 2,  # gate/lifting + recorder
              'log_timing': True}
    if args.source == 'walk':
        values.update(preset=WALK_PRESETS[0], preload_frames=args.frames)
    return values


def gate_overrides(args: argparse.Namespace) -> dict[str, Any]:
    """The gate node's parameters for the demo: independent generated scenes are no stream (an
    earlier frame's boxes say nothing of the next one), so the temporal prior is off for them
    and on for a walk or the sample."""
    return {'log_timing': True, 'temporal_prior': args.source != 'generated'}


def run_in_graph(env: dict[str, str], module: str, args: list[str], timeout_s: float
                 ) -> subprocess.CompletedProcess:
    """Run `python -m <module> <args>` in a child process in the graph's DDS environment `env`
    (as a `ros2` tool would ask the graph), its output captured."""
    return subprocess.run([sys.executable, '-m', module, *args], env=env, capture_output=True,
                          text=True, timeout=timeout_s)


def running_already(env: dict[str, str], names: list[str]) -> list[str]:
    """Those of the node `names` already in the graph of `env` (like `ros2 node list`)."""
    run = run_in_graph(env, 'neulens_ros.tools.graph_check', names, 120)
    if run.returncode != 0:
        last = (run.stderr.strip().splitlines() or ['no output'])[-1]
        print(f'neulens-demo: could not list the nodes of the domain ({last}); starting anyway')
        return []
    return run.stdout.split()


def wait_until_active(env: dict[str, str], node: str, timeout_s: float) -> bool:
    """True once lifecycle node `node` reports 'active' (like `ros2 lifecycle get`)."""
    run = run_in_graph(env, 'neulens_ros.tools.lifecycle',
                       ['--timeout', str(timeout_s), 'wait', node, 'active'], timeout_s + 30)
    return run.returncode == 0


def print_report(bag: Path, out: Path, log_dir: Path) -> Path | None:
    """Per-stage latency and bytes per frame from the bag; writes the full report to `out`,
    and checks the report's stage latencies against the timings the nodes logged."""
    try:
        frames = load_frames(bag)
    except NeulensError as exc:
        print(f'neulens-demo: no report: {exc}')
        return None
    summary = summarize(frames)
    paths = write_report(summary, frames.frames, bag, out)
    print(f"per-stage latency over {summary['frames']} frames (ms):")
    rows = [(stage, summary['stage_latency_ms'][stage]) for stage in summary['stages']]
    rows += [('transmission', summary['transmission_ms']),
             ('end to end', summary['end_to_end_ms'])]
    for name, stats in rows:
        if stats.get('count'):
            print(f"  {name:14s} p50 {stats['p50']:8.1f}  p90 {stats['p90']:8.1f}  "
                  f"({stats['count']} frames)")
    sent = summary['bytes_per_frame']
    if sent['payload'].get('count'):
        saved = sent['saved_fraction']
        print(f"bytes per frame: {sent['payload']['mean'] / 1e3:.1f} kB of tiles sent vs "
              f"{sent['full_frame']['mean'] / 1e3:.1f} kB for the full frame in the same "
              f"encoding ({abs(100 * saved):.0f}% {'less' if saved >= 0 else 'more'})")
    check = agreement(frames.frames, read_timing_logs(log_dir))
    (out / 'log_check.json').write_text(json.dumps(check, indent=1))
    worst = max((s.get('max_relative_diff', 0.0) for s in check['stages'].values()),
                default=float('nan'))
    compared = ', '.join(f"{name} {s['frames']}" for name, s in check['stages'].items())
    print(f"report vs node logs: {'agree' if check['agree'] else 'DISAGREE'} (frames compared: "
          f"{compared or 'none'}; largest difference {100 * worst:.2f}%)")
    return paths['markdown']


if __name__ == '__main__':
    raise SystemExit(main())
