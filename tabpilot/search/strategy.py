"""The search strategies behind one ask/tell interface, so the warm start, pruning, the worker pool,
budgets and MLflow logging stay the search loop's (tabpilot.search.loop) whatever proposes.

`ask()` gives (trial id, configuration); `suggest_point(config)` queues a known configuration (a
default, a warm start) so the strategy learns from it like from its own proposals; `tell(id, loss)`
reports a loss, lower is better.
"""
from __future__ import annotations

from typing import Any, Protocol

import numpy as np

from tabpilot.search.encoding import Encoder
from tabpilot.search.spaces import Dim

STRATEGIES = ("tpe", "random", "anneal", "grid", "gp", "evolution")


class Strategy(Protocol):
    def ask(self) -> tuple[int, dict[str, Any]]: ...

    def suggest_point(self, config: dict[str, Any]) -> tuple[int, dict[str, Any]]: ...

    def tell(self, tid: int, loss: float | None) -> None: ...


class PointSearch:
    """What the strategies over the encoded space share: trial ids, the history of told losses in
    the order told, the proposals still running, a seeded generator. Subclasses propose."""

    def __init__(self, families: tuple[str, ...], seed: int, startup_trials: int = 8, rows: int = 1000,
                 features: dict[str, Dim] | None = None) -> None:
        self.encoder = Encoder(families, rows, features)
        self.rng = np.random.default_rng(seed)
        self.startup_trials = startup_trials
        self.next_id = 0
        self.asked: dict[int, dict[str, Any]] = {}  # running: asked, not yet told
        self.told: list[tuple[dict[str, Any], float]] = []  # (configuration, loss), in the order told

    def ask(self) -> tuple[int, dict[str, Any]]:
        return self._register(self.propose())

    def suggest_point(self, config: dict[str, Any]) -> tuple[int, dict[str, Any]]:
        return self._register(self.encoder.inside(config))

    def tell(self, tid: int, loss: float | None) -> None:
        """A failure (None, or not finite) counts as worse than anything told so far."""
        config = self.asked.pop(tid)
        if loss is None or not np.isfinite(loss):
            loss = max((lost for _, lost in self.told), default=0.0) + 1.0
        self.told.append((config, float(loss)))

    def propose(self) -> dict[str, Any]:
        raise NotImplementedError

    def seen(self, config: dict[str, Any]) -> bool:
        return config in self.asked.values() or any(config == c for c, _ in self.told)

    def _register(self, config: dict[str, Any]) -> tuple[int, dict[str, Any]]:
        tid, self.next_id = self.next_id, self.next_id + 1
        self.asked[tid] = config
        return tid, config


def make_strategy(name: str, families: tuple[str, ...], seed: int, startup_trials: int = 8, rows: int = 1000,
                  features: dict[str, Dim] | None = None) -> Strategy:
    """The named strategy (`search.strategy`) over these families and feature settings."""
    if name in ("tpe", "random", "anneal"):
        from tabpilot.search.hpo import HyperoptSearch

        return HyperoptSearch(families, seed, startup_trials, rows, features, algorithm=name)
    if name == "grid":
        from tabpilot.search.grid import GridSearch

        return GridSearch(families, seed, startup_trials, rows, features)
    if name == "gp":
        from tabpilot.search.bayes import GPSearch

        return GPSearch(families, seed, startup_trials, rows, features)
    if name == "evolution":
        from tabpilot.search.evolution import EvolutionSearch

        return EvolutionSearch(families, seed, startup_trials, rows, features)
    raise ValueError(f"unknown search strategy {name!r}; choose from {', '.join(STRATEGIES)}")
