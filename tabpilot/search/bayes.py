"""Bayesian optimisation: a Gaussian-process surrogate per family and expected improvement.

Per family, a Gaussian process (scikit-learn: constant x Matern 5/2 with one length scale per
dimension, plus white noise; losses normalised) models the loss over the family's unit cube
(tabpilot.search.encoding) from the trials told so far. The next configuration is the one with the
highest expected improvement over the best loss so far, among RANDOM_POINTS random points of every
family and LOCAL_POINTS small moves around each family's best. A family with fewer than MIN_FIT
results has no process yet: its points are scored under all families' losses together (their mean
and spread), so it is tried while it might still beat the best. Points near a running trial of the
same family are left out, so parallel workers are not given the same point. The first
`startup_trials` proposals are random. A family's process is refit only when it has new results:
one ask costs one fit, milliseconds on the few hundred trials a search runs.
"""
from __future__ import annotations

import warnings
from typing import Any

import numpy as np
from scipy.stats import norm
from sklearn.exceptions import ConvergenceWarning
from sklearn.gaussian_process import GaussianProcessRegressor
from sklearn.gaussian_process.kernels import ConstantKernel, Matern, WhiteKernel

from tabpilot.search.strategy import PointSearch

RANDOM_POINTS, LOCAL_POINTS, LOCAL_STEP = 256, 64, 0.1
MIN_FIT = 3
# The best points and the latest ones a process is fitted on: a long search's hundreds of trials
# would make every fit cubic in them.
FIT_BEST, FIT_LATEST = 48, 48
NEAR_RUNNING = 0.05  # unit distance within which a candidate counts as a running trial's point


def expected_improvement(mu: np.ndarray, sigma: np.ndarray, best: float) -> np.ndarray:
    """Expected decrease below `best` of a loss distributed N(mu, sigma^2)."""
    sigma = np.maximum(sigma, 1e-12)
    z = (best - mu) / sigma
    return (best - mu) * norm.cdf(z) + sigma * norm.pdf(z)


class GPSearch(PointSearch):
    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.models: dict[str, tuple[int, GaussianProcessRegressor]] = {}

    def propose(self) -> dict[str, Any]:
        if len(self.told) < self.startup_trials:
            return self.encoder.sample(self.rng)
        losses = np.array([loss for _, loss in self.told])
        best, chosen = float(losses.min()), (-1.0, "", np.empty(0))
        for family in self.encoder.families:
            told = [(self.encoder.encode(c), loss) for c, loss in self.told if c["family"] == family]
            candidates = self._candidates(family, told)
            if not len(candidates):
                continue
            model = self._model(family, told)
            if model is None:
                mu = np.full(len(candidates), losses.mean())
                sigma = np.full(len(candidates), losses.std() if losses.std() > 0 else 1.0)
            else:
                mu, sigma = model.predict(candidates, return_std=True)
            gain = expected_improvement(mu, sigma, best)
            i = int(np.argmax(gain))
            if gain[i] > chosen[0]:
                chosen = (float(gain[i]), family, candidates[i])
        if not chosen[1]:
            return self.encoder.sample(self.rng)
        config = self.encoder.decode(chosen[1], chosen[2])
        return self.encoder.sample(self.rng) if self.seen(config) else config

    def _candidates(self, family: str, told: list[tuple[np.ndarray, float]]) -> np.ndarray:
        width = len(self.encoder.dims(family))
        points = [self.rng.random((RANDOM_POINTS, width))]
        if told:
            best = min(told, key=lambda t: t[1])[0]
            points.append(np.clip(best + self.rng.normal(0.0, LOCAL_STEP, (LOCAL_POINTS, width)), 0.0, 1.0))
        candidates = np.vstack(points)
        running = [self.encoder.encode(c) for c in self.asked.values() if c["family"] == family]
        for point in running:
            candidates = candidates[np.linalg.norm(candidates - point, axis=1) > NEAR_RUNNING * np.sqrt(width)]
        return candidates

    def _model(self, family: str, told: list[tuple[np.ndarray, float]]) -> GaussianProcessRegressor | None:
        if len(told) < MIN_FIT:
            return None
        known = self.models.get(family)
        if known is not None and known[0] == len(told):
            return known[1]
        ranked = sorted(range(len(told)), key=lambda i: told[i][1])[:FIT_BEST]
        used = sorted(set(ranked) | set(range(max(len(told) - FIT_LATEST, 0), len(told))))
        X = np.array([told[i][0] for i in used])
        y = np.array([told[i][1] for i in used])
        kernel = ConstantKernel(1.0, (1e-3, 1e3)) * Matern(np.full(X.shape[1], 0.5), (1e-2, 1e2), nu=2.5) \
            + WhiteKernel(1e-2, (1e-6, 1.0))
        model = GaussianProcessRegressor(kernel, normalize_y=True, random_state=int(self.rng.integers(2**31 - 1)))
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", ConvergenceWarning)
            model.fit(X, y)
        self.models[family] = (len(told), model)
        return model
