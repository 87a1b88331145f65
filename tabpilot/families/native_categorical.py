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
"""
from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd
from sklearn.base import BaseEstimator, MetaEstimatorMixin, clone
from sklearn.utils.metaestimators import available_if

MISSING_CODE = -1  # CatBoost's categories are integers or strings: a gap or an unseen level is its own


def _is_catboost(estimator: Any) -> bool:
    return type(estimator).__module__.startswith("catboost")


def _is_xgboost(estimator: Any) -> bool:
    return type(estimator).__module__.startswith("xgboost")


class NativeCategorical(MetaEstimatorMixin, BaseEstimator):
    """`estimator` (an LGBM*, CatBoost* or XGB* model) fitted with the columns named in `categorical`
    as categories."""

    def __init__(self, estimator: Any, categorical: tuple[str, ...] = ()) -> None:
        self.estimator = estimator
        self.categorical = categorical

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
        if _is_catboost(self.estimator_):
            self.estimator_.fit(self._matrix(X), y, cat_features=self.positions_ or None)
        elif _is_xgboost(self.estimator_):
            if self.positions_:
                kinds = ["c" if i in self.positions_ else "q" for i in range(self.n_features_in_)]
                self.estimator_.set_params(enable_categorical=True, feature_types=kinds)
            self.estimator_.fit(self._matrix(X), y)
        else:
            self.estimator_.fit(self._matrix(X), y, categorical_feature=self.positions_ or "auto")
        if hasattr(self.estimator_, "classes_"):
            self.classes_ = np.asarray(self.estimator_.classes_)
        return self

    def predict(self, X: Any) -> np.ndarray:
        out = np.asarray(self.estimator_.predict(self._matrix(X)))
        return out.ravel() if out.ndim == 2 and out.shape[1] == 1 else out

    @available_if(lambda self: hasattr(self.estimator, "predict_proba"))
    def predict_proba(self, X: Any) -> np.ndarray:
        return np.asarray(self.estimator_.predict_proba(self._matrix(X)), dtype=float)
