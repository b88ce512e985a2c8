"""neulens-lifecycle: get or change the state of a lifecycle node (the supernet node).

The pip-only stand-in for `ros2 lifecycle`: it calls the standard lifecycle services
(lifecycle_msgs GetState / ChangeState / GetAvailableTransitions), so it works on both kinds
of install:

    neulens-lifecycle get /supernet
    neulens-lifecycle set /supernet deactivate
    neulens-lifecycle list /supernet       # transitions possible from the current state
    neulens-lifecycle --timeout 120 wait /supernet active   # until it is (exit 1 if not)
"""

from __future__ import annotations

import argparse
import sys
import time

from lifecycle_msgs.msg import Transition
from lifecycle_msgs.srv import ChangeState, GetAvailableTransitions, GetState

from neulens_ros.errors import ConfigError
from neulens_ros.tools.services import NodeServices, client_node

class LifecycleClient(NodeServices):
    """Calls one node's lifecycle services."""

    def state(self) -> str:
        return self.call(GetState, 'get_state', GetState.Request()).current_state.label

    def transitions(self) -> dict[str, int]:
        """Transitions possible from the current state: label -> id."""
        res = self.call(GetAvailableTransitions, 'get_available_transitions',
                        GetAvailableTransitions.Request())
        return {t.transition.label: t.transition.id for t in res.available_transitions}

    def change(self, label: str) -> bool:
        """Trigger the transition `label` (as `ros2 lifecycle set` does)."""
        available = self.transitions()
        if label not in available:
            raise ConfigError(f'transition {label!r} is not possible from state '
                              f'{self.state()}; possible now: ' + ', '.join(available))
        request = ChangeState.Request(transition=Transition(id=available[label]))
        return bool(self.call(ChangeState, 'change_state', request, resend=False).success)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog='neulens-lifecycle', description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument('--timeout', type=float, default=10.0, help='seconds to wait')
    sub = parser.add_subparsers(dest='command', required=True)
    sub.add_parser('get', help='current state').add_argument('node')
    sub.add_parser('list', help='transitions available now').add_argument('node')
    p = sub.add_parser('set', help='trigger a transition')
    p.add_argument('node')
    p.add_argument('transition', help='configure, activate, deactivate, cleanup, shutdown')
    p = sub.add_parser('wait', help='wait (up to --timeout) until the node is in a state')
    p.add_argument('node')
    p.add_argument('state', help='unconfigured, inactive, active or finalized')
    return parser


def wait_for_state(client: LifecycleClient, state: str, timeout_s: float) -> str:
    """Poll until the node reports `state` or `timeout_s` passes; returns the last state."""
    end = time.monotonic() + timeout_s
    current = 'unknown'
    while time.monotonic() < end:
        try:
            current = client.state()
        except ConfigError:  # not up yet
            current = 'not running'
        if current == state:
            break
        time.sleep(0.2)
    return current


def run_command(client: LifecycleClient, args: argparse.Namespace) -> int:
    if args.command == 'get':
        print(client.state())
    elif args.command == 'wait':
        client.timeout_s = min(client.timeout_s, 2.0)  # per call; --timeout bounds the wait
        current = wait_for_state(client, args.state, args.timeout)
        print(current)
        return 0 if current == args.state else 1
    elif args.command == 'list':
        for label in client.transitions():
            print(f'  {label}')
    else:
        ok = client.change(args.transition)
        print('Transitioning successful' if ok else
              f'Transitioning failed: the node refused {args.transition} (see its log); '
              f'it is now {client.state()}')
        return 0 if ok else 1
    return 0


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    with client_node('neulens_lifecycle_client') as node:
        try:
            return run_command(LifecycleClient(node, args.node, args.timeout), args)
        except ConfigError as exc:
            print(f'neulens-lifecycle: {exc}', file=sys.stderr)
            return 2


if __name__ == '__main__':
    raise SystemExit(main())
