"""Stop the pipeline's nodes mid-stream, round after round, and count the clean exits (exit
code 0 within 5 s, no traceback). Every round starts all nodes of config/topology.yaml and
stops them downstream first; the signal alternates SIGINT / SIGTERM from node to node and from
round to round. With --repeat, the signal comes again every 20 ms until the node has exited.

    .venv/bin/python scripts/stop_nodes.py --rounds 20 [--repeat] [--domain-id N]
"""

from __future__ import annotations

import argparse
import os
import signal
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))  # the checkout's package, for this process and the nodes

from neulens_ros.launching import dds_environment  # noqa: E402
from neulens_ros.stop_check import stop_round  # noqa: E402

SIGNALS = (signal.SIGINT, signal.SIGTERM)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument('--rounds', type=int, default=20)
    parser.add_argument('--repeat', action='store_true', help='signal again during cleanup')
    parser.add_argument('--domain-id', type=int, default=1 + os.getpid() % 100)
    args = parser.parse_args()
    env = dds_environment(args.domain_id, extra={'PYTHONPATH': str(ROOT)})
    results = []
    with tempfile.TemporaryDirectory() as tmp:
        for index in range(args.rounds):
            signals = SIGNALS[index % 2:] + SIGNALS[:index % 2]
            round_results = stop_round(env, Path(tmp) / f'round_{index}', signals,
                                       repeat=args.repeat)
            print(f'round {index + 1}: ' + '; '.join(map(str, round_results)), flush=True)
            for result in round_results:
                if not result.clean:
                    print(result.log[-2000:])
            results += round_results
    clean = sum(r.clean for r in results)
    print(f'clean exits: {clean} of {len(results)} node stops in {args.rounds} rounds '
          f'(slowest {max(r.seconds for r in results):.2f} s)')
    return 0 if clean == len(results) else 1


if __name__ == '__main__':
    raise SystemExit(main())
