"""Progress bars for long work: live on a terminal, a line every LOG_INTERVAL_S in a log.

tqdm redraws a bar up to ten times a second; written to a file or a CI log (stderr not a
terminal) that is hundreds of kilobytes of bars for one training run. Every long loop of the
package goes through `progress_bar`, which keeps the bar on a terminal and otherwise updates it
only every LOG_INTERVAL_S seconds (and at the end), also from tqdm's monitor thread.
"""

from __future__ import annotations

import sys
from typing import Any

LOG_INTERVAL_S = 30.0  # between updates of a bar written to a log


def progress_bar(iterable: Any = None, **kwargs: Any) -> Any:
    """A tqdm bar over `iterable` (or a manual one with total=...); kwargs go to tqdm."""
    from tqdm import tqdm
    if not sys.stderr.isatty():  # tqdm's monitor also redraws a slow bar every maxinterval
        kwargs.setdefault('mininterval', LOG_INTERVAL_S)
        kwargs.setdefault('maxinterval', max(LOG_INTERVAL_S, kwargs['mininterval']))
    return tqdm(iterable, **kwargs)
