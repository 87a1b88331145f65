"""Fitted models as one call on a float matrix: tree models through Treelite's C++ predictor on small
batches (their library's own predict on large ones), linear models and MLPs as matrix products,
the rest through scikit-learn on arrays.

A scikit-learn forest predicts a few rows tree by tree in Python (8-32 ms for 16 rows of the demo's
forests, benchmarks/results/native_rows.md); Treelite's GTIL walks all trees in one call, with the same float32
comparison of inputs to thresholds that scikit-learn's trees make. This is the only module that
imports treelite. `compile_model` checks its result against the model on the rows it is given and
returns None where they differ.
"""
from __future__ import annotations

import warnings
from functools import partial
from typing import Any

import numpy as np

from tabpilot.data.fast_preprocess import same

# Outputs of a compiled model may differ from the original's by float rounding in their sums
# (XGBoost's trees through Treelite: float32 sums in another order, up to 2e-7 on probabilities),
# by at most this much in absolute terms: a regressor's values in the thousands differed by 3.7e-4
# between Treelite (a served row) and XGBoost (a large file), so predict and serve disagreed.
TOLERANCE = 1e-6
# From this many rows a library's own vectorised predict beats Treelite's GTIL, which walks the trees
# row by row; below it, a call's fixed cost is what matters (benchmarks/results/native_rows.md).
NATIVE_ROWS = {"xgboost": 256, "forest": 1000, "lightgbm": 256}  # LightGBM's: taken as XGBoost's, not measured


class _Sklearn:
    """The model itself, on an array (the same object as in the pipeline: pickled once)."""

    def __init__(self, model: Any, method: str) -> None:
        self.model, self.method = model, method

    def __call__(self, X: np.ndarray, threads: int) -> np.ndarray:
        with warnings.catch_warnings():
            # Fitted on named columns, it warns at every unnamed call; the columns are the same.
            warnings.simplefilter("ignore", UserWarning)
            return np.asarray(getattr(self.model, self.method)(X), dtype=float)


class _Linear:
    """A linear model's scores as one matrix product; probabilities as scikit-learn makes them."""

    def __init__(self, model: Any, method: str) -> None:
        self.coef = model.coef_.T if model.coef_.ndim == 2 else model.coef_
        self.intercept, self.method = model.intercept_, method
        self.binary = method == "predict_proba" and len(model.classes_) <= 2

    def __call__(self, X: np.ndarray, threads: int) -> np.ndarray:
        from scipy.special import expit, softmax

        scores = X @ self.coef + self.intercept
        if scores.ndim > 1 and scores.shape[1] == 1:
            scores = scores.reshape(-1)
        if self.method == "predict":
            return scores
        if self.binary:
            p = expit(scores)
            return np.vstack([1 - p, p]).T
        return softmax(scores, axis=1)


class _MLP:
    """A multilayer perceptron's forward pass without scikit-learn's per-call input checks."""

    def __init__(self, model: Any, method: str) -> None:
        self.model, self.method = model, method

    def __call__(self, X: np.ndarray, threads: int) -> np.ndarray:
        y = self.model._forward_pass_fast(X, check_input=False)
        if y.ndim == 2 and y.shape[1] == 1:
            y = y.ravel()
        if self.method == "predict" or y.ndim == 2:
            return np.asarray(y, dtype=float)
        return np.vstack([1 - y, y]).T


class _Standardised:
    """A regressor fitted on a standardised target (TransformedTargetRegressor), scaled back."""

    def __init__(self, model: Any, method: str) -> None:
        self.inner = _adapter(model.regressor_, method)
        self.scale = model.transformer_.scale_ if model.transformer_.with_std else 1.0
        self.mean = model.transformer_.mean_ if model.transformer_.with_mean else 0.0

    def __call__(self, X: np.ndarray, threads: int) -> np.ndarray:
        return (np.asarray(self.inner(X, threads)).reshape(-1, 1) * self.scale + self.mean).ravel()


class _HistGradientBoosting:
    """HistGradientBoosting's own tree walk, on the matrix its fitted ColumnTransformer would make:
    categorical columns first, each as its ordinal encoder's code (NaN for a gap or an unseen level),
    then the numbers. That ColumnTransformer's checks took half of its predict on 1,000 rows of ames
    (27 ms); the codes are a search in each column's sorted categories."""

    def __init__(self, model: Any, method: str) -> None:
        self.model, self.method = model, method
        self.categorical: list[tuple[int, np.ndarray]] = []
        self.numerical: np.ndarray | None = None
        if model._preprocessor is not None:
            parts = {name: (part, np.flatnonzero(mask)) for name, part, mask in model._preprocessor.transformers_
                     if name != "remainder" or np.any(mask)}  # an empty remainder makes no column
            if set(parts) != {"encoder", "numerical"}:
                raise ValueError("not the ColumnTransformer HistGradientBoosting makes")
            encoder, columns = parts["encoder"]
            for i, categories in zip(columns, encoder.categories_, strict=True):
                levels = np.asarray(categories, dtype=float)
                self.categorical.append((int(i), levels[~np.isnan(levels)]))
            self.numerical = parts["numerical"][1]

    def _matrix(self, X: np.ndarray) -> np.ndarray:
        if self.numerical is None:
            return np.ascontiguousarray(X, dtype=np.float64)
        out = np.empty((len(X), len(self.categorical) + len(self.numerical)), dtype=np.float64)
        for k, (i, levels) in enumerate(self.categorical):
            values = X[:, i]
            at = np.minimum(np.searchsorted(levels, values), max(len(levels) - 1, 0))
            out[:, k] = np.where(levels[at] == values, at, np.nan) if len(levels) else np.nan
        out[:, len(self.categorical):] = X[:, self.numerical]
        return out

    def __call__(self, X: np.ndarray, threads: int) -> np.ndarray:
        model = self.model
        raw = np.zeros((len(X), model.n_trees_per_iteration_), dtype=model._baseline_prediction.dtype, order="F")
        raw += model._baseline_prediction
        model._predict_iterations(self._matrix(X), model._predictors, raw, False, threads)
        if self.method == "predict":
            return np.asarray(model._loss.link.inverse(raw.ravel()), dtype=float)
        return np.asarray(model._loss.predict_proba(raw), dtype=float)


class _Treelite:
    """A forest, a HistGradientBoosting, an XGBoost or a LightGBM model as a Treelite model (pickled as
    its bytes) for small batches, and the library's own predict (`native`) for large ones."""

    def __init__(self, model: Any, method: str, native: Any) -> None:
        import treelite.sklearn

        self.method, self.native = method, native
        lightgbm = hasattr(model, "booster_")
        self.native_rows = NATIVE_ROWS["lightgbm" if lightgbm else "xgboost" if hasattr(model, "get_booster")
                                       else "forest"]
        if lightgbm:
            self.model = treelite.frontend.from_lightgbm(model.booster_)
        elif hasattr(model, "get_booster"):
            self.model = treelite.frontend.from_xgboost(model.get_booster())
        else:
            self.model = treelite.sklearn.import_model(model)
        # XGBoost and scikit-learn's decision trees compare float32 inputs; HistGradientBoosting and
        # LightGBM float64.
        self.float32 = not hasattr(model, "_predictors") and not lightgbm
        self.dtype = np.float32 if self.model.input_type == "float32" else np.float64
        # HistGradientBoosting scores a category it did not see in fit as missing (its own ordinal
        # encoder makes it NaN); Treelite would send it down the "not in the set" branch.
        self.known: list[tuple[int, np.ndarray]] = []
        self.levels: dict[int, frozenset[float]] = {}
        encoder = getattr(model, "_preprocessor", None)
        if encoder is not None:
            for name, part, mask in encoder.transformers_:
                if name == "encoder":
                    for k, i in enumerate(np.flatnonzero(mask)):
                        self.known.append((int(i), np.asarray(part.categories_[k], dtype=float)))

    def __call__(self, X: np.ndarray, threads: int) -> np.ndarray:
        if len(X) >= self.native_rows:
            return self.native(X, threads)  # type: ignore[no-any-return]
        return self.gtil(X, threads)

    def gtil(self, X: np.ndarray, threads: int) -> np.ndarray:
        import treelite.gtil

        X = X.astype(np.float32) if self.float32 else X.copy() if self.known else X
        for i, known in self.known:
            if len(X) <= 64:  # a set per value: np.isin costs 20 us a call, and a request may make 40
                levels = self.levels.setdefault(i, frozenset(known.tolist()))
                X[[v not in levels for v in X[:, i].tolist()], i] = np.nan
            else:
                X[~np.isin(X[:, i], known), i] = np.nan
        out = treelite.gtil.predict(self.model, np.ascontiguousarray(X, dtype=self.dtype), nthread=threads)
        out = out.reshape(len(X), -1)
        if self.method == "predict":
            return out[:, 0]
        return np.hstack([1.0 - out, out]) if out.shape[1] == 1 else out

    def __getstate__(self) -> dict[str, Any]:
        return {**vars(self), "model": self.model.serialize_bytes()}

    def __setstate__(self, state: dict[str, Any]) -> None:
        import treelite

        self.__dict__.update({"levels": {}, **state, "model": treelite.Model.deserialize_bytes(state["model"])})


class _XGBoost:
    def __init__(self, model: Any, method: str) -> None:
        self.booster = model.get_booster()
        self.method = method
        self.iterations = model._get_iteration_range(None)
        self.threads = 0

    def __call__(self, X: np.ndarray, threads: int) -> np.ndarray:
        if threads != self.threads:
            self.booster.set_param({"nthread": threads})
            self.threads = threads
        out = self.booster.inplace_predict(X.astype(np.float32), iteration_range=self.iterations)
        if self.method == "predict" or out.ndim == 2:
            return np.asarray(out, dtype=float)
        return np.column_stack([1.0 - out, out]).astype(float)


class _LightGBM:
    """LightGBM's booster on the float matrix (categorical columns as their codes, as it was fitted)."""

    def __init__(self, model: Any, method: str) -> None:
        self.booster, self.method = model.booster_, method

    def __call__(self, X: np.ndarray, threads: int) -> np.ndarray:
        out = np.asarray(self.booster.predict(X, num_threads=threads), dtype=float)
        if self.method == "predict" or out.ndim == 2:
            return out
        return np.column_stack([1.0 - out, out])


def _adapter(model: Any, method: str, own_walk: bool = True) -> Any:
    name = type(model).__name__
    if name == "NativeCategorical" and type(model.estimator_).__name__ in ("LGBMClassifier", "LGBMRegressor"):
        return _Treelite(model.estimator_, method, _LightGBM(model.estimator_, method))
    if name == "NativeCategorical" and type(model.estimator_).__name__ in ("XGBClassifier", "XGBRegressor"):
        return _Treelite(model.estimator_, method, _XGBoost(model.estimator_, method))
    if name in ("RandomForestClassifier", "RandomForestRegressor", "ExtraTreesClassifier", "ExtraTreesRegressor"):
        return _Treelite(model, method, _Sklearn(model, method))
    if name in ("HistGradientBoostingClassifier", "HistGradientBoostingRegressor"):
        return _Treelite(model, method, _HistGradientBoosting(model, method) if own_walk else _Sklearn(model, method))
    if name in ("XGBClassifier", "XGBRegressor"):
        return _Treelite(model, method, _XGBoost(model, method))
    if name in ("LogisticRegression", "Ridge", "ElasticNet", "LinearRegression"):
        return _Linear(model, method)
    if name in ("MLPClassifier", "MLPRegressor"):
        return _MLP(model, method)
    if name == "TransformedTargetRegressor" and type(model.transformer_).__name__ == "StandardScaler":
        return _Standardised(model, method)
    return _Sklearn(model, method)


def _own_xgboost(model: Any, method: str) -> _XGBoost:
    """XGBoost's own inplace predict, for a model alone or inside NativeCategorical."""
    return _XGBoost(getattr(model, "estimator_", model), method)


def compile_model(model: Any, method: str, X: np.ndarray, expected: np.ndarray) -> Any | None:
    """A callable `(X, threads) -> predictions` that gives `expected` on `X` (the model's own
    predictions of those rows), or None."""
    # HistGradientBoosting's walk without its ColumnTransformer first, then with it (private attributes of
    # scikit-learn's: another version may lack them); XGBoost without Treelite where its float32 sums
    # differ (concrete's 987-tree regressor); then the model's own predict.
    for make in (_adapter, partial(_adapter, own_walk=False), _own_xgboost, _Sklearn):
        try:
            fast = make(model, method)
            if not same(fast(X, 1), expected, TOLERANCE, relative=False):
                continue
            # A model with a second path for large batches is checked on one as well.
            repeat = -(-getattr(fast, "native_rows", 0) // X.shape[0])
            if repeat and not same(fast(np.repeat(X, repeat, axis=0), 1), np.repeat(expected, repeat, axis=0),
                                   TOLERANCE, relative=False):
                continue
            return fast
        except Exception:  # a model this version of a library cannot convert keeps its own predict
            continue
    return None
