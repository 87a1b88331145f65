"""Which members, and how many of each one's fold models, an ensemble can serve within a latency
and size limit, from the estimated latencies and measured sizes of tabpilot.search.predict_cost."""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np

from tabpilot.core.metrics import Metric
from tabpilot.ensemble.model import caruana_select
from tabpilot.search.predict_cost import ZERO, Cost, model_cost, preprocessor_cost, sized


@dataclass(frozen=True)
class Candidate:
    """A trial as an ensemble member: one fold model's cost, the fold models it kept (0: it is
    refit as one model), and which preprocessing it shares with other trials (equal keys: one step)."""

    trial: int
    model: Cost
    preprocess: Cost
    folds: int
    key: str

    @classmethod
    def of(cls, trial: int, described: dict[str, Any], folds: int) -> Candidate:
        return cls(trial, Cost(*described["model"]), Cost(*described["preprocess"]), folds,
                   described["key"] or f"trial {trial}")


def served_refit(folds: int, used: int) -> bool:
    """Whether a member using `used` of its `folds` fold models is served refit as one model on the
    whole training split: it kept none, or is cut to one of several."""
    return used == 0 or used == 1 < folds


def ensemble_cost(candidates: dict[int, Candidate], folds: dict[int, int]) -> Cost:
    """The cost of each trial in `folds` with that many of its fold models. Trials with equal
    preprocessing share it fold by fold (they were fitted on the same rows); refit members share
    theirs, fitted on the whole split, with each other only (a refit beside fold models of the
    same preprocessing adds one: counted as one, ames' and cps1988's refits were all given back)."""
    total = ZERO
    shared: dict[str, tuple[int, Cost]] = {}
    for trial, used in folds.items():
        c = candidates[trial]
        k = max(used, 1)  # a trial without fold models is refit as one
        total += c.model * k
        key = f"refit {c.key}" if served_refit(c.folds, used) else c.key
        before, cost = shared.get(key, (0, c.preprocess))
        shared[key] = (max(before, k), cost)
    for used, cost in shared.values():
        total += cost * used
    return total


def fit_under(weights: dict[int, float], oof: dict[int, np.ndarray], y: np.ndarray, metric: Metric,
              rounds: int, candidates: dict[int, Candidate], limit: Cost) -> tuple[dict[int, float], dict[int, int]]:
    """Weights, and fold models used per member (0: refit as one model), within `limit`.

    `weights` (Caruana's, unconstrained) with every kept fold model is kept when that fits: a
    member of unknown cost stays as it is, and the ensemble is checked again once it is built.
    Otherwise greedy selection runs again, admitting a trial only while the members, one model
    each, fit; then the heaviest members get fold models back, one at a time, while they fit. When
    no single model fits, the cheapest is the ensemble: a model over the limit beats none, and
    the report says so.
    """
    known = {t: c for t, c in candidates.items() if t in oof}
    full = {t: known[t].folds for t in weights if t in known}
    if ensemble_cost(known, full).within(limit) or not known:
        return weights, full
    ids = sorted(known)
    losses = {t: metric.loss(y, oof[t]) for t in ids}
    fits_alone = [t for t in ids if ensemble_cost(known, {t: 1}).within(limit)]
    if not fits_alone:
        cheapest = min(ids, key=lambda t: (ensemble_cost(known, {t: 1}).batch_ms, losses[t], t))
        return {cheapest: 1.0}, {cheapest: min(known[cheapest].folds, 1)}
    chosen = caruana_select({t: oof[t] for t in ids}, y, metric, rounds, admit=lambda members, t: ensemble_cost(
        known, {m: 1 for m in members | {t}}).within(limit))
    return chosen, _grow_folds(sorted(chosen, key=lambda t: (-chosen[t], t)), known, limit)


def _grow_folds(order: list[int], known: dict[int, Candidate], limit: Cost) -> dict[int, int]:
    """Fold models per member, from one each: one more for each member in `order` that can take it,
    round by round, while the whole fits `limit`."""
    folds = {t: min(known[t].folds, 1) for t in order}
    grown = True
    while grown:
        grown = False
        for t in order:
            if 0 < folds[t] < known[t].folds and ensemble_cost(known, folds | {t: folds[t] + 1}).within(limit):
                folds[t] += 1
                grown = True
    return folds


def likely_members(ranked: list[Candidate], limit: Cost, most: int) -> dict[int, int]:
    """The members, and fold models of each, that an ensemble under `limit` is likely to serve, from
    candidates best first, before any out-of-fold blending is known: each admitted while the members
    with one model each fit (as `fit_under` admits them), at most `most`, then fold models given back
    best first. The search keeps time for these (an ensemble of every best trial's whole bag left 9-16 s
    of 60 unused: results/suite_60s_ba366bc.md). When none fits alone, the cheapest, as `fit_under` does."""
    known = {c.trial: c for c in ranked}
    order: list[int] = []
    for c in ranked:
        if len(order) < most and ensemble_cost(known, {t: 1 for t in [*order, c.trial]}).within(limit):
            order.append(c.trial)
    if not order and ranked:
        order = [min(ranked, key=lambda c: ensemble_cost(known, {c.trial: 1}).batch_ms).trial]
    return _grow_folds(order, known, limit)


def fitted_cost(members: list[Any]) -> Cost:
    """The estimated cost of fitted members (pipelines, or bags of them), each distinct
    preprocessing step counted once, as the compiled ensemble runs it."""
    total, seen = ZERO, set()
    for member in members:
        for model in getattr(member, "models", None) or [member]:
            steps = getattr(model, "steps", None)
            if not steps or len(steps) < 2:
                total += sized(model_cost(model), model)
                continue
            total += sized(model_cost(steps[-1][1]), [step for _, step in steps[1:]])
            if id(steps[0][1]) not in seen:
                seen.add(id(steps[0][1]))
                total += sized(preprocessor_cost(steps[0][1]), steps[0][1])
    return total
