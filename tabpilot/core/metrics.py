"""Metrics by name. Predictions are class probabilities (n, k) for classification, values for regression."""
from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
from scipy.stats import rankdata
from sklearn import metrics as skm

from tabpilot.core.errors import UserError

DEFAULTS = {"binary": "roc_auc", "multiclass": "log_loss", "regression": "rmse"}
EPS = 1e-15


@dataclass(frozen=True)
class Metric:
    name: str
    fn: Callable[[np.ndarray, np.ndarray], float]
    greater_is_better: bool
    tasks: tuple[str, ...]

    def score(self, y: np.ndarray, pred: np.ndarray) -> float:
        return float(self.fn(y, pred))

    def loss(self, y: np.ndarray, pred: np.ndarray) -> float:
        """What the search minimises: the score, negated when greater is better."""
        value = self.score(y, pred)
        return -value if self.greater_is_better else value

    def better(self, a: float, b: float) -> bool:
        return a > b if self.greater_is_better else a < b


def _labels(proba: np.ndarray) -> np.ndarray:
    return np.asarray(proba).argmax(axis=1)


# Binary AUC and log loss in numpy: the ensemble's selection scores hundreds of blends, and
# scikit-learn's input checks took 2-3 ms a call, 1.6 s of hpc's ensemble stage. They equal
# scikit-learn's to rounding (tests/unit/test_metrics.py).
def _roc_auc(y: np.ndarray, proba: np.ndarray) -> float:
    proba = np.asarray(proba)
    if proba.shape[1] == 2:
        positive = np.asarray(y) == 1
        n_pos = int(positive.sum())
        n_neg = len(positive) - n_pos
        if n_pos == 0 or n_neg == 0:
            raise ValueError("Only one class present in y_true. ROC AUC score is not defined in that case.")
        ranks = rankdata(proba[:, 1])  # ties get their mean rank, as the trapezoid rule counts them half
        return float((ranks[positive].sum() - n_pos * (n_pos + 1) / 2) / (n_pos * n_neg))
    return skm.roc_auc_score(y, proba, multi_class="ovr", labels=np.arange(proba.shape[1]))


def _log_loss(y: np.ndarray, proba: np.ndarray) -> float:
    proba = np.clip(np.asarray(proba, dtype=float), EPS, 1)
    proba = proba / proba.sum(axis=1, keepdims=True)
    eps = np.finfo(proba.dtype).eps  # scikit-learn's clip
    picked = np.clip(proba[np.arange(len(proba)), np.asarray(y, dtype=int)], eps, 1 - eps)
    return float(-np.mean(np.log(picked)))


CLASSIFICATION = ("binary", "multiclass")
METRICS: dict[str, Metric] = {m.name: m for m in (
    Metric("roc_auc", _roc_auc, True, CLASSIFICATION),
    Metric("log_loss", _log_loss, False, CLASSIFICATION),
    Metric("accuracy", lambda y, p: skm.accuracy_score(y, _labels(p)), True, CLASSIFICATION),
    Metric("balanced_accuracy", lambda y, p: skm.balanced_accuracy_score(y, _labels(p)), True, CLASSIFICATION),
    Metric("f1", lambda y, p: skm.f1_score(y, _labels(p)), True, ("binary",)),
    Metric("f1_macro", lambda y, p: skm.f1_score(y, _labels(p), average="macro"), True, CLASSIFICATION),
    Metric("rmse", skm.root_mean_squared_error, False, ("regression",)),
    Metric("mae", skm.mean_absolute_error, False, ("regression",)),
    Metric("r2", skm.r2_score, True, ("regression",)),
    Metric("mape", skm.mean_absolute_percentage_error, False, ("regression",)),
)}


def resolve(name: str, task: str) -> Metric:
    """The metric for a task: `auto` picks the AutoML Benchmark's choice (AUC, log loss, RMSE)."""
    if name == "auto":
        name = DEFAULTS[task]
    metric = METRICS.get(name)
    if metric is None:
        raise UserError(f"unknown metric '{name}': choose one of {', '.join(METRICS)}")
    if task not in metric.tasks:
        fits = [m.name for m in METRICS.values() if task in m.tasks]
        raise UserError(f"metric '{name}' does not apply to a {task} task: choose one of {', '.join(fits)}")
    return metric
