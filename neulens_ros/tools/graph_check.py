"""Which of the given nodes already run in this ROS domain, asked from a short-lived node
after a discovery wait (what `ros2 node list` shows). neulens-demo asks it in its graph's DDS
environment before it starts a node: a second pipeline in the same domain would mix its
messages with the demo's (two gates: every frame sent twice, every latency wrong).

    python -m neulens_ros.tools.graph_check --wait 2 /gate /supernet

prints the names found, one per line; exit code 0 either way.
"""

from __future__ import annotations

import argparse
import time
from typing import Sequence

from neulens_ros.tools.services import client_node

# localhost discovery of a node already up takes up to one participant announcement period
# of Fast DDS (3 s) when the two sides use different transports: measured 0.2-2.9 s
DISCOVERY_S = 4.0


def full_name(name: str, namespace: str) -> str:
    """'/ns/name' from a node's name and namespace ('/' or '/ns')."""
    return f'{namespace.rstrip("/")}/{name}'


def running(names: Sequence[str], wait_s: float = DISCOVERY_S) -> list[str]:
    """Those of `names` (full names, '/ns/name') that are in the graph within `wait_s`."""
    wanted, found = set(names), set()
    with client_node('neulens_graph_check') as node:
        deadline = time.monotonic() + wait_s
        while found != wanted and time.monotonic() < deadline:
            found |= wanted & {full_name(n, ns) for n, ns in node.get_node_names_and_namespaces()}
            time.sleep(0.1)
    return sorted(found)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog='python -m neulens_ros.tools.graph_check',
                                     description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument('--wait', type=float, default=DISCOVERY_S, help='discovery wait, s')
    parser.add_argument('names', nargs='+', help="full node names, '/ns/name'")
    args = parser.parse_args(argv)
    if args.wait <= 0:
        parser.error('--wait must be > 0 s')
    print('\n'.join(running(args.names, args.wait)))
    return 0


if __name__ == '__main__':
    raise SystemExit(main())
