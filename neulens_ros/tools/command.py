"""The command line a tool records beside its results, so that they say how to reproduce them."""

from __future__ import annotations

import shlex
import sys
from typing import Sequence


def recorded_command(program: str, argv: Sequence[str] | None) -> str:
    """`program` (e.g. 'neulens-bench slo') and its arguments, shell-quoted: `argv` as a
    dispatcher passed them, or (None) this process's own after the script's name, as when a
    tool module runs with `python -m`."""
    args = list(sys.argv[1:] if argv is None else argv)
    return ' '.join([program, *(shlex.quote(a) for a in args)])
