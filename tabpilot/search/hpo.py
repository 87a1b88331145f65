"""hyperopt's TPE, random search and annealing driven ask/tell from one process (the strategies
`tpe`, `random` and `anneal`, tabpilot.search.strategy): the only module that imports hyperopt.

`ask` returns one configuration at a time (TPE: after the random start-up trials it suggests one
per call; annealing samples around the best trials so far, narrowing as trials accumulate);
`suggest_point` queues a known configuration (a family default, a warm start) so the algorithm
learns from it like from its own suggestions; `tell` reports a loss, or a failure.
"""
from __future__ import annotations

import math
from typing import Any

import numpy as np
from hyperopt import JOB_STATE_DONE, STATUS_FAIL, STATUS_OK, Domain, Trials, anneal, hp, rand, space_eval, tpe

from tabpilot.data.features import PLAIN
from tabpilot.search.encoding import candidate
from tabpilot.search.spaces import Dim, cast, clip_to_space, space_for


def _expression(label: str, dim: Dim) -> Any:
    kind = dim[0]
    if kind == "uniform":
        return hp.uniform(label, dim[1], dim[2])
    if kind == "loguniform":
        return hp.loguniform(label, math.log(dim[1]), math.log(dim[2]))
    if kind == "int":
        return hp.quniform(label, dim[1], dim[2], 1)
    if kind == "logint":
        return hp.qloguniform(label, math.log(dim[1]), math.log(dim[2]), 1)
    if kind == "choice":
        return hp.choice(label, dim[1])
    raise ValueError(f"unknown dimension kind {kind!r} for {label}")


def build_space(families: tuple[str, ...], rows: int, features: dict[str, Dim] | None = None) -> Any:
    """A conditional space: the family first, then that family's own hyperparameters; beside it the
    feature settings (`features.<name>`), shared by every family."""
    return {
        "model": hp.choice("family", [
            {"family": f,
             "params": {name: _expression(f"{f}.{name}", dim) for name, dim in space_for(f, rows).items()}}
            for f in families
        ]),
        "features": {name: _expression(f"features.{name}", dim) for name, dim in (features or {}).items()},
    }


class HyperoptSearch:
    """Ask/tell over the conditional space; reproducible for a given seed and order of calls."""

    def __init__(self, families: tuple[str, ...], seed: int, startup_trials: int = 8, rows: int = 1000,
                 features: dict[str, Dim] | None = None, algorithm: str = "tpe") -> None:
        if algorithm not in ("tpe", "random", "anneal"):
            raise ValueError(f"hyperopt has no algorithm {algorithm!r} here: tpe, random or anneal")
        self.algorithm = algorithm
        self.families = tuple(families)
        self.rows = rows
        self.features = dict(features or {})
        self.space = build_space(self.families, rows, self.features)
        self.domain = Domain(lambda _: 0.0, self.space)
        self.trials = Trials()
        self.rng = np.random.default_rng(seed)
        self.startup_trials = startup_trials

    def ask(self) -> tuple[int, dict[str, Any]]:
        tid = self.trials.new_trial_ids(1)[0]
        seed = int(self.rng.integers(2**31 - 1))
        if self.algorithm == "tpe":  # TPE itself samples at random until `n_startup_jobs` trials have finished
            docs = tpe.suggest([tid], self.domain, self.trials, seed, n_startup_jobs=self.startup_trials)
        else:
            docs = (rand if self.algorithm == "random" else anneal).suggest([tid], self.domain, self.trials, seed)
        self._insert(docs)
        vals = {k: v[0] for k, v in docs[0]["misc"]["vals"].items() if v}
        config = space_eval(self.space, vals)
        family = config["model"]["family"]
        return tid, candidate(family, cast(family, config["model"]["params"]), config["features"])

    def suggest_point(self, config: dict[str, Any]) -> tuple[int, dict[str, Any]]:
        """Queue a given configuration as a trial, moved inside this space (stored configurations
        come from tables of other sizes); returns its id for `tell` and the configuration to run."""
        family = config["family"]
        params = clip_to_space(family, config["params"], self.rows)
        vals: dict[str, Any] = {"family": self.families.index(family)}
        for name, dim in space_for(family, self.rows).items():
            value = params[name]
            vals[f"{family}.{name}"] = dim[1].index(value) if dim[0] == "choice" else value
        settings = {**PLAIN, **(config.get("features") or {})}
        for name, dim in self.features.items():
            vals[f"features.{name}"] = dim[1].index(settings[name])
        tid = self.trials.new_trial_ids(1)[0]
        labels = self.domain.params.keys()
        misc = {"tid": tid, "cmd": self.domain.cmd, "workdir": self.domain.workdir,
                "idxs": {k: [tid] if k in vals else [] for k in labels},
                "vals": {k: [vals[k]] if k in vals else [] for k in labels}}
        self._insert(self.trials.new_trial_docs([tid], [None], [self.domain.new_result()], [misc]))
        return tid, candidate(family, params, {n: settings[n] for n in self.features})

    def tell(self, tid: int, loss: float | None) -> None:
        """Report a trial's loss; None marks it failed (TPE then ignores it)."""
        for doc in self.trials._dynamic_trials:
            if doc["tid"] == tid:
                doc["state"] = JOB_STATE_DONE
                ok = loss is not None and math.isfinite(loss)
                doc["result"] = {"loss": float(loss), "status": STATUS_OK} if ok else {"status": STATUS_FAIL}
                break
        self.trials.refresh()

    def _insert(self, docs: list[dict[str, Any]]) -> None:
        self.trials.insert_trial_docs(docs)
        self.trials.refresh()
