"""neulens-eval: evaluation commands.

    neulens-eval lifting ...     3D lifting against generated ground truth
    neulens-eval detector ...    detector mAP side by side (shipped or trained checkpoints)
    neulens-eval gate ...        gate accuracy: learning curve and a capacity probe
    neulens-eval difficulty ...  how hard a scene preset is (data and detector properties)
    neulens-eval stream ...      detector and gate (+ temporal prior) on held-out walks
"""

from __future__ import annotations

import importlib
import sys

COMMANDS = {
    'lifting': 'neulens_ros.tools.eval_lifting',
    'detector': 'neulens_ros.tools.eval_detector',
    'gate': 'neulens_ros.tools.eval_gate',
    'difficulty': 'neulens_ros.tools.eval_difficulty',
    'stream': 'neulens_ros.tools.eval_stream',
}


def main(argv: list[str] | None = None) -> int:
    args = list(sys.argv[1:] if argv is None else argv)
    if not args or args[0] not in COMMANDS:
        print(__doc__.strip())
        return 0 if args and args[0] in ('-h', '--help') else 2
    return importlib.import_module(COMMANDS[args[0]]).main(args[1:])


if __name__ == '__main__':
    raise SystemExit(main())
