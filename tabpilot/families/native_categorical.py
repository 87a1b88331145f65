"""LightGBM, CatBoost and XGBoost told which columns are categorical, so each treats them its own
way (LightGBM's and XGBoost's category splits, CatBoost's ordered target statistics) instead of as
ordered codes: a district or a country coded 0..59 in an arbitrary order is not a number.

The tree preprocessing (tabpilot.data.preprocessing) hands a model every categorical column as its
ordinal code, NaN for a gap or an unseen level, named as the input column. LightGBM takes the
columns only as a fit argument, which a Pipeline step cannot be given once for every clone,
XGBoost as its `feature_types`, which depend on the columns' order, and CatBoost takes no float
and no NaN in them; this wrapper is that glue and nothing else: it passes the named columns'
positions at fit, and the same matrix (CatBoost: codes as integers, -1 for NaN) at every predict.
The fitted library model is `estimator_` (tabpilot.search.predict_cost and tabpilot.ensemble.fast_models look
through to it, as to TransformedTargetRegressor's `regressor_`).

With `early_stop_rows`, a LightGBM or XGBoost fit on at least that many rows holds EARLY_STOP_SHARE of
them out and stops adding trees once EARLY_STOP_ROUNDS in a row have not improved the loss there, as
HistGradientBoosting does from 10,000 rows; the trees after the best are then cut, so every predictor
(the library's, Treelite's, the cost estimate) sees the same model. The held-out rows stay in the
fitted matrix with weight 0 (they add nothing to a gradient or a hessian): a copy of the other 90% of
a large table was the worker's largest allocation.
"""
from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd
from sklearn.base import BaseEstimator, MetaEstimatorMixin, clone
from sklearn.utils.metaestimators import available_if

MISSING_CODE = -1  # CatBoost's categories are integers or strings: a gap or an unseen level is its own
EARLY_STOP_SHARE, EARLY_STOP_ROUNDS = 0.1, 20
# From here a tenth of the rows costs little accuracy and the rounds saved much time (the 1M-row runs of
# docs/scale.md reached 400k rows with configurations asked for ~900 trees); no suite table is this large.
EARLY_STOP_ROWS = 100_000


def _is_catboost(estimator: Any) -> bool:
    return type(estimator).__module__.startswith("catboost")


def _is_xgboost(estimator: Any) -> bool:
    return type(estimator).__module__.startswith("xgboost")


class NativeCategorical(MetaEstimatorMixin, BaseEstimator):
    """`estimator` (an LGBM*, CatBoost* or XGB* model) fitted with the columns named in `categorical`
    as categories."""

    def __init__(self, estimator: Any, categorical: tuple[str, ...] = (), early_stop_rows: int | None = None) -> None:
        self.estimator = estimator
        self.categorical = categorical
        self.early_stop_rows = early_stop_rows

    def __sklearn_tags__(self) -> Any:
        tags = super().__sklearn_tags__()
        tags.estimator_type = "classifier" if hasattr(self.estimator, "predict_proba") else "regressor"
        tags.input_tags.allow_nan = True
        return tags

    def _matrix(self, X: Any) -> Any:
        """The model's input: floats (LightGBM); CatBoost's categorical columns as integer codes."""
        values = np.asarray(X, dtype=np.float64)
        if not _is_catboost(self.estimator) or not self.positions_:
            return values
        frame = pd.DataFrame(values)
        for i in self.positions_:
            frame[i] = np.nan_to_num(values[:, i], nan=MISSING_CODE).astype(np.int64)
        return frame

    def fit(self, X: Any, y: Any) -> NativeCategorical:
        names = [str(c) for c in getattr(X, "columns", [])]
        self.positions_ = [names.index(c) for c in self.categorical if c in names]
        self.n_features_in_ = np.shape(X)[1]
        self.estimator_ = clone(self.estimator)
        matrix, y = self._matrix(X), np.asarray(y)
        if _is_catboost(self.estimator_):
            self.estimator_.fit(matrix, y, cat_features=self.positions_ or None)
            return self._classes()
        stop = self.early_stop_rows is not None and len(y) >= self.early_stop_rows
        valid = self._validation(y) if stop else None
        weight = None
        if valid is not None:
            weight = np.ones(len(y))
            weight[valid] = 0.0
        if _is_xgboost(self.estimator_):
            if self.positions_:
                kinds = ["c" if i in self.positions_ else "q" for i in range(self.n_features_in_)]
                self.estimator_.set_params(enable_categorical=True, feature_types=kinds)
            if valid is None:
                self.estimator_.fit(matrix, y)
            else:
                self.estimator_.set_params(early_stopping_rounds=EARLY_STOP_ROUNDS)
                self.estimator_.fit(matrix, y, sample_weight=weight, eval_set=[(matrix[valid], y[valid])],
                                    verbose=False)
                # Only the best trees, under the same booster API (sliced), for Treelite and the cost.
                self.estimator_._Booster = self.estimator_.get_booster()[: self.estimator_.best_iteration + 1]
                self.estimator_.set_params(early_stopping_rounds=None)
        else:
            import lightgbm

            categorical = self.positions_ or "auto"
            if valid is None:
                self.estimator_.fit(matrix, y, categorical_feature=categorical)
            else:
                self.estimator_.fit(matrix, y, sample_weight=weight, categorical_feature=categorical,
                                    eval_X=(matrix[valid],), eval_y=(y[valid],),
                                    callbacks=[lightgbm.early_stopping(EARLY_STOP_ROUNDS, verbose=False)])
                best = self.estimator_.booster_.model_to_string(num_iteration=self.estimator_.best_iteration_)
                self.estimator_._Booster = lightgbm.Booster(model_str=best)
        return self._classes()

    def _validation(self, y: np.ndarray) -> np.ndarray:
        """The rows to stop on: a seeded sample, stratified for a classifier."""
        from sklearn.model_selection import train_test_split

        stratify = y if hasattr(self.estimator_, "predict_proba") and np.unique(y, return_counts=True)[1].min() >= 2 \
            else None
        seed = self.estimator_.get_params().get("random_state")
        return train_test_split(np.arange(len(y)), test_size=EARLY_STOP_SHARE, random_state=seed, stratify=stratify)[1]

    def _classes(self) -> NativeCategorical:
        if hasattr(self.estimator_, "classes_"):
            self.classes_ = np.asarray(self.estimator_.classes_)
        return self

    def predict(self, X: Any) -> np.ndarray:
        out = np.asarray(self.estimator_.predict(self._matrix(X)))
        return out.ravel() if out.ndim == 2 and out.shape[1] == 1 else out

    @available_if(lambda self: hasattr(self.estimator, "predict_proba"))
    def predict_proba(self, X: Any) -> np.ndarray:
        return np.asarray(self.estimator_.predict_proba(self._matrix(X)), dtype=float)
