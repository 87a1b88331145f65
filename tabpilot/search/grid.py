"""Grid search: a finite grid per family, built from its space, enumerated family by family in turn.

Each numeric dimension takes three levels, its middle first and then both ends of its range (on the
log scale for log dimensions); a choice takes every value. A family's grid is the product of its
dimensions' levels, walked with the last dimension changing fastest, so its first point is the
middle of the space. Families take turns, cheapest as given first; a configuration already run (a
default, a warm start) is skipped. Once every grid is spent, points are drawn at random.
"""
from __future__ import annotations

import itertools
from collections.abc import Iterator
from typing import Any

import numpy as np

from tabpilot.search.spaces import Dim
from tabpilot.search.strategy import PointSearch

LEVELS = (0.5, 0.0, 1.0)  # unit positions of a numeric dimension's levels, in the order tried


def levels(dim: Dim) -> list[float]:
    return [(i + 0.5) / len(dim[1]) for i in range(len(dim[1]))] if dim[0] == "choice" else list(LEVELS)


class GridSearch(PointSearch):
    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.grids: dict[str, Iterator[tuple[float, ...]]] = {
            f: itertools.product(*(levels(d) for _, d in self.encoder.dims(f))) for f in self.encoder.families}
        self.turn = 0

    def propose(self) -> dict[str, Any]:
        while self.grids:
            family = list(self.grids)[self.turn % len(self.grids)]
            point = next(self.grids[family], None)
            if point is None:
                del self.grids[family]
                continue
            config = self.encoder.decode(family, np.array(point))
            if not self.seen(config):
                self.turn += 1
                return config
        return self.encoder.sample(self.rng)

    def size(self, family: str) -> int:
        """How many points the family's grid holds."""
        return int(np.prod([len(levels(d)) for _, d in self.encoder.dims(family)]))
