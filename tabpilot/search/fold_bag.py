"""A bagged trial: its fold models averaged, as the search fits them and the ensemble serves them."""
from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd
from sklearn.base import BaseEstimator
from sklearn.pipeline import Pipeline


def shared_output(model: Any, X: pd.DataFrame, method: str, transformed: dict[int, Any]) -> np.ndarray:
    """`model`'s predictions; a Pipeline's first step reuses its output for `X` from `transformed`
    (keyed by the step's identity), so pipelines that share a fitted preprocessor run it once."""
    if isinstance(model, FoldBag):
        return np.mean([shared_output(m, X, method, transformed) for m in model.models], axis=0)  # type: ignore[union-attr]
    if not isinstance(model, Pipeline) or len(model.steps) < 2:
        return np.asarray(getattr(model, method)(X), dtype=float)
    first = model.steps[0][1]
    if id(first) not in transformed:
        transformed[id(first)] = first.transform(X)
    Z = transformed[id(first)]
    for _, step in model.steps[1:-1]:
        if step is not None and step != "passthrough":
            Z = step.transform(Z)
    return np.asarray(getattr(model.steps[-1][1], method)(Z), dtype=float)



class FoldBag(BaseEstimator):
    """One trial's fold models averaged: a bagged member that needs no refit (each model saw
    (k-1)/k of the rows, and together they saw them all)."""

    def __init__(self, models: list[Any] | None = None, split: dict[str, Any] | None = None) -> None:
        self.models = models
        # How its models' rows were chosen, for an export to fit them again (tabpilot.ensemble.export):
        # {"task", "n_folds", "groups": [[seed, repeats], ...]}, the models being the first of
        # make_folds(y, task, n_folds, seed, repeats) over the groups in turn. None: not recorded.
        self.split = split

    def fit(self, X: Any = None, y: Any = None) -> FoldBag:
        """The models arrive fitted."""
        if not self.models:
            raise ValueError("a fold bag needs at least one fitted model")
        return self

    def predict(self, X: pd.DataFrame) -> np.ndarray:
        return shared_output(self, X, "predict", {})

    def predict_proba(self, X: pd.DataFrame) -> np.ndarray:
        return shared_output(self, X, "predict_proba", {})
