"""Entry points of the node executables: `source_node`, `gate_node`, ... (the console scripts
that `ros2 run neulens_ros <node>` and launch start) and `python -m neulens_ros.nodes.entry
<node> [--ros-args ...]`.

The stop signals are caught (nodes/stop.py) before the node's module and its dependencies load,
so a Ctrl-C or launch's SIGINT in a node's first seconds ends it with exit code 0 and one line,
not a KeyboardInterrupt traceback from inside an import.
"""

from __future__ import annotations

import importlib
import sys
from typing import Callable

from neulens_ros.nodes.stop import StopRequest

NODE_EXECUTABLES = ('source_node', 'recorder_node', 'gate_node', 'supernet_node',
                    'lifting_node')


def start(executable: str, args: list[str] | None = None) -> int:
    """Install the stop signals, then import node module `executable` and run it; exit code."""
    if executable not in NODE_EXECUTABLES:
        print(f'[neulens_ros] fatal: no node executable {executable!r} (one of '
              f'{", ".join(NODE_EXECUTABLES)})', file=sys.stderr)
        return 2
    stop = StopRequest()
    node_main = importlib.import_module(f'neulens_ros.nodes.{executable}').main
    return node_main(args, stop)


def console_script(executable: str) -> Callable[[], int]:
    """The zero-argument callable a console script calls for `executable`."""
    return lambda: start(executable)


source_node, recorder_node, gate_node, supernet_node, lifting_node = map(console_script,
                                                                          NODE_EXECUTABLES)

if __name__ == '__main__':
    if len(sys.argv) < 2:
        print(f'usage: python -m neulens_ros.nodes.entry <{"|".join(NODE_EXECUTABLES)}> '
              '[--ros-args ...]', file=sys.stderr)
        raise SystemExit(2)
    raise SystemExit(start(sys.argv[1], sys.argv[:1] + sys.argv[2:]))
