"""Bad input is counted and logged once per kind, never a crash and never log spam."""

from __future__ import annotations

from collections import Counter
from typing import Any


class ProblemLog:
    """Counts problems by kind; the first of each kind is logged as a warning with its detail,
    later ones only at debug level (the counts go out with the node's status)."""

    def __init__(self, logger: Any) -> None:
        self.logger = logger
        self.counts: Counter[str] = Counter()

    def report(self, kind: str, detail: str) -> None:
        self.counts[kind] += 1
        if self.counts[kind] == 1:
            self.logger.warning(f'{kind}: {detail} (counted; later ones are logged at debug '
                                'level)')
        else:
            self.logger.debug(f'{kind} #{self.counts[kind]}: {detail}')
