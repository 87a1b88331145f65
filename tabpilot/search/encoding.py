"""Configurations as points of the unit cube, one cube per family: the space the grid, the Gaussian
process and evolution search in (hyperopt keeps its own, tabpilot.search.hpo).

A dimension's unit value maps linearly onto its range, through the logarithm for log dimensions, and
integers round on the way back; a choice of n values takes the n equal slices of [0, 1] in order.
The feature settings (`features.<name>`) are dimensions of every family's cube.
"""
from __future__ import annotations

import math
from typing import Any

import numpy as np

from tabpilot.data.features import PLAIN
from tabpilot.search.spaces import Dim, cast, clip_to_space, space_for


def candidate(family: str, params: dict[str, Any], features: dict[str, Any]) -> dict[str, Any]:
    """A trial's configuration as the workers take it. Settings outside the space (construct off,
    keep all) stay implicit: a plain candidate looks the same whether or not the search could have
    tried features."""
    chosen = {**PLAIN, **features}
    if chosen["keep"] >= 1.0:  # nothing is dropped, so how features would be ranked is moot
        chosen["select"] = PLAIN["select"]
    return {"family": family, "params": params, **({"features": chosen} if chosen != PLAIN else {})}


def to_value(dim: Dim, u: float) -> Any:
    kind, u = dim[0], min(max(float(u), 0.0), 1.0)
    if kind == "choice":
        return dim[1][min(int(u * len(dim[1])), len(dim[1]) - 1)]
    lo, hi = float(dim[1]), float(dim[2])
    if kind in ("loguniform", "logint"):
        value = math.exp(math.log(lo) + u * (math.log(hi) - math.log(lo)))
    else:
        value = lo + u * (hi - lo)
    return int(min(max(round(value), math.ceil(lo)), math.floor(hi))) if kind in ("int", "logint") else value


def to_unit(dim: Dim, value: Any) -> float:
    kind = dim[0]
    if kind == "choice":
        return (dim[1].index(value) + 0.5) / len(dim[1])
    lo, hi = float(dim[1]), float(dim[2])
    if hi <= lo:
        return 0.5
    if kind in ("loguniform", "logint"):
        return min(max((math.log(value) - math.log(lo)) / (math.log(hi) - math.log(lo)), 0.0), 1.0)
    return min(max((float(value) - lo) / (hi - lo), 0.0), 1.0)


class Encoder:
    """The families' cubes for a training set of `rows` rows, feature settings included."""

    def __init__(self, families: tuple[str, ...], rows: int, features: dict[str, Dim] | None = None) -> None:
        self.families, self.rows = tuple(families), rows
        self.features = dict(features or {})
        self.spaces = {f: space_for(f, rows) for f in self.families}

    def dims(self, family: str) -> list[tuple[str, Dim]]:
        return [*self.spaces[family].items(), *((f"features.{n}", d) for n, d in self.features.items())]

    def decode(self, family: str, x: np.ndarray) -> dict[str, Any]:
        values = {name: to_value(dim, u) for (name, dim), u in zip(self.dims(family), x, strict=True)}
        params = cast(family, {n: v for n, v in values.items() if not n.startswith("features.")})
        settings = {n.split(".", 1)[1]: v for n, v in values.items() if n.startswith("features.")}
        return candidate(family, params, settings)

    def encode(self, config: dict[str, Any]) -> np.ndarray:
        family = config["family"]
        settings = {**PLAIN, **(config.get("features") or {})}
        values = {**config["params"], **{f"features.{n}": settings[n] for n in self.features}}
        return np.array([to_unit(dim, values[name]) for name, dim in self.dims(family)], dtype=float)

    def inside(self, config: dict[str, Any]) -> dict[str, Any]:
        """A given configuration (a default, a warm start from a table of another size) moved inside
        this space, as the workers will run it."""
        family = config["family"]
        settings = {**PLAIN, **(config.get("features") or {})}
        return candidate(family, clip_to_space(family, config["params"], self.rows),
                         {n: settings[n] for n in self.features})

    def sample(self, rng: np.random.Generator, family: str | None = None) -> dict[str, Any]:
        family = family or self.families[int(rng.integers(len(self.families)))]
        return self.decode(family, rng.random(len(self.dims(family))))
