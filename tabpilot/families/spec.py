"""What declares an algorithm family: its estimator builder, hyperparameter space, known-good default,
and how the search treats it. One family per module of this package; `tabpilot.families` lists them.

A dimension is a tuple: ("uniform", low, high), ("loguniform", low, high), ("int", low, high),
("logint", low, high) or ("choice", [options]). A bound may be `Scaled(share, low, high)`: that
share of the training rows, clipped, so neighbourhoods and leaf sizes grow with the data.
"""
from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

Dim = tuple[Any, ...]


@dataclass(frozen=True)
class Scaled:
    """A bound that is `share` of the training rows, clipped to [low, high]."""

    share: float
    low: float
    high: float

    def at(self, rows: int) -> float:
        return float(min(self.high, max(self.low, round(rows * self.share))))


@dataclass(frozen=True)
class Context:
    """What every builder may need beyond its hyperparameters."""

    task: str
    seed: int
    categorical: tuple[str, ...] = ()
    n_features: int = 0  # columns the model sees (0: not known)
    wide: tuple[str, ...] = ()  # the categorical columns with more levels than HistGradientBoosting takes
    budget: float | None = None  # the run's time budget in seconds; None in trial-count mode (no clock)


@dataclass(frozen=True)
class Family:
    name: str
    # (hyperparameters, context) -> an unfitted estimator; imports its library when called, so a
    # worker imports only the families it runs and the first trial starts sooner.
    build: Callable[[dict[str, Any], Context], Any]
    space: dict[str, Dim]
    # The library's default (or the community's usual starting point), tried before the search proper.
    default: dict[str, Any]
    cost_rank: int  # defaults are tried cheapest family first, in this order
    dense: bool = False  # needs imputed, scaled, one-hot input; the others take ordinal codes and NaN
    # A column for every level of a many-level categorical (sparse), not its most frequent ones: a
    # regularised linear model learns a shrunk effect per level, as a GLM does.
    every_level: bool = False
    max_rows: int | None = None  # not worth a trial past this many training rows (cost grows too fast)
    extra_defaults: tuple[dict[str, Any], ...] = ()  # further starting points, right after the default
    # Values for hyperparameters added after a configuration was stored (the shipped portfolio, a
    # champion's members): the value that reproduces how it was trained.
    added_later: dict[str, Any] = field(default_factory=dict)
    searched_by_default: bool = True  # else only when `search.families` names it
