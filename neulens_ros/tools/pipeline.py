"""neulens-pipeline: start the MR pipeline's node graph without ROS 2 `launch`.

The pip-only twin of `ros2 launch neulens_ros mr_pipeline.launch.py`: same topology file,
same parameter files, same topics, one OS process per node. Stops on Ctrl-C (or after
--duration), shutting every node down cleanly so bags are finished.

    neulens-pipeline                              # whole graph, sample data, no bag
    neulens-pipeline --record-bag --duration 20   # record a bag for 20 s
    neulens-pipeline --role edge                  # only the edge half (supernet)
    neulens-pipeline --set source.rate_hz=10 --set gate.policy=uniform
    neulens-pipeline --set source.source=walk --set source.preset=hard \
        --set source.preload_frames=150           # a camera walking through rooms
    neulens-pipeline --respawn                    # restart nodes that die (as launch does)
"""

from __future__ import annotations

import argparse
import signal
import time
from pathlib import Path
from typing import Any

import yaml

from neulens_ros.errors import ConfigError, NeulensError
from neulens_ros.launching import ProcessGroup, dds_environment, node_command
from neulens_ros.respawn import Respawner, RespawnPolicy
from neulens_ros.topology import ROLES, NodeEntry, load_topology


def parse_overrides(items: list[str]) -> dict[str, dict[str, Any]]:
    """['node.param=value', ...] -> {node: {param: value}} (values parsed as YAML)."""
    out: dict[str, dict[str, Any]] = {}
    for item in items:
        key, sep, raw = item.partition('=')
        node, dot, param = key.partition('.')
        if not sep or not dot or not node or not param:
            raise ConfigError(f"--set {item!r}: expected NODE.PARAM=VALUE, e.g. "
                              "source.rate_hz=10")
        out.setdefault(node, {})[param] = yaml.safe_load(raw)
    return out


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog='neulens-pipeline', description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument('--namespace', default='', help='ROS namespace of every node')
    parser.add_argument('--role', choices=(*ROLES, 'all'), default='all',
                        help='start only the headset or the edge half of the graph')
    parser.add_argument('--no-sample-data', dest='use_sample_data', action='store_false',
                        help='do not start the source node (use live camera topics)')
    parser.add_argument('--record-bag', action='store_true', help='start the recorder')
    parser.add_argument('--bag-dir', type=Path, default=Path('bags'),
                        help='folder that receives recorded bags')
    parser.add_argument('--backend', default='', help='supernet backend override')
    parser.add_argument('--set', dest='overrides', action='append', default=[],
                        metavar='NODE.PARAM=VALUE', help='parameter override (repeatable)')
    parser.add_argument('--duration', type=float, default=0.0,
                        help='stop after this many seconds (0 = until Ctrl-C)')
    parser.add_argument('--domain-id', type=int, default=None, help='ROS_DOMAIN_ID to use')
    parser.add_argument('--log-dir', type=Path, default=None,
                        help='write each node’s output to LOG_DIR/<node>.log')
    parser.add_argument('--respawn', action='store_true',
                        help='restart a node whose process dies (non-zero exit code or a '
                        'signal), for the nodes topology.yaml marks respawn: true')
    parser.add_argument('--respawn-delay', type=float, default=None, metavar='S',
                        help="seconds between a node's death and its restart (default: the "
                        "node's respawn_delay_s in topology.yaml)")
    parser.add_argument('--respawn-max-per-minute', type=int, default=5, metavar='N',
                        help='restarts of one node allowed within any 60 s; then it stays '
                        'down (default 5)')
    return parser


def selected_nodes(args: argparse.Namespace) -> list[NodeEntry]:
    launch_args = {'use_sample_data': args.use_sample_data, 'record_bag': args.record_bag}
    return [n for n in load_topology()
            if n.enabled(launch_args) and args.role in ('all', n.role)]


def node_overrides(args: argparse.Namespace, entry: NodeEntry,
                   extra: dict[str, dict[str, Any]]) -> dict[str, Any]:
    """Parameters set from launch arguments (topology's arg_params), then --set values."""
    launch_args = {'namespace': args.namespace, 'use_sample_data': args.use_sample_data,
                   'record_bag': args.record_bag, 'bag_dir': str(args.bag_dir),
                   'backend': args.backend}
    values: dict[str, Any] = {param: launch_args[arg] for param, arg in entry.arg_params.items()
                              if launch_args[arg] != ''}
    values.update(extra.get(entry.name, {}))
    return values


def respawn_policies(args: argparse.Namespace, nodes: list[NodeEntry]
                     ) -> dict[str, RespawnPolicy]:
    """{node: policy} for the respawnable nodes, empty without --respawn."""
    if not args.respawn:
        return {}
    return {n.name: RespawnPolicy(
        delay_s=n.respawn_delay_s if args.respawn_delay is None else args.respawn_delay,
        max_per_minute=args.respawn_max_per_minute) for n in nodes if n.respawn}


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        extra = parse_overrides(args.overrides)
        nodes = selected_nodes(args)
        unknown = set(extra) - {n.name for n in nodes}
        if unknown:
            raise ConfigError(f'--set names nodes that are not started: {sorted(unknown)}')
        commands = {n.name: node_command(n, args.namespace, node_overrides(args, n, extra))
                    for n in nodes}
        policies = respawn_policies(args, nodes)
    except NeulensError as exc:
        print(f'neulens-pipeline: {exc}')
        return 2
    group = ProcessGroup(env=dds_environment(args.domain_id), log_dir=args.log_dir)
    respawner = Respawner(group, policies)
    stop = {'now': False}

    def on_signal(signum: int, _frame: object) -> None:
        stop['now'] = True
    # Both stop the graph, also where SIGINT was ignored when the tool started (a background
    # job of a non-interactive shell): Python then raises no KeyboardInterrupt.
    previous = {sig: signal.signal(sig, on_signal) for sig in (signal.SIGINT, signal.SIGTERM)}
    try:
        for name, cmd in commands.items():
            proc = group.start(name, cmd)
            print(f'started {name} (pid {proc.pid})', flush=True)
        deadline = time.monotonic() + args.duration if args.duration > 0 else None
        while not stop['now'] and (deadline is None or time.monotonic() < deadline):
            for line in respawner.poll():
                print(line, flush=True)
            if len(group.exited()) == len(group.procs) and not respawner.pending:
                break
            time.sleep(0.2)
    finally:
        codes = group.stop()
        for sig, handler in previous.items():
            signal.signal(sig, handler)
    failed = {n: c for n, c in codes.items() if c not in (0, -signal.SIGINT)}
    for name, code in codes.items():
        restarts = respawner.restarts.get(name, 0)
        print(f'{name}: exit code {code}' + (f' (restarted {restarts} times)' if restarts else ''))
    return 1 if failed else 0


if __name__ == '__main__':
    raise SystemExit(main())
