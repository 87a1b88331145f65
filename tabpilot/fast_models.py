"""Fitted models as one call on a float matrix: tree ensembles through Treelite's C++ predictor,
XGBoost through its booster, the rest through scikit-learn on arrays.

A scikit-learn forest predicts one row tree by tree in Python (10 ms for 300 trees, measured in
benchmarks/results/serving.md); Treelite's GTIL walks all trees in one call, with the same float32
comparison of inputs to thresholds that scikit-learn's trees make. This is the only module that
imports treelite. `compile_model` checks its result against the model on the rows it is given and
returns None where they differ.
"""
from __future__ import annotations

import warnings
from typing import Any

import numpy as np

from tabpilot.fast_preprocess import same

# Outputs of a compiled model may differ from the original's by float rounding in their sums
# (XGBoost's trees through Treelite: float32 sums in another order, up to 2e-7 on probabilities).
TOLERANCE = 1e-6
# From this many rows a library's own vectorised predict beats Treelite's GTIL, which walks the trees
# row by row (results/serving.md); below it, a call's fixed cost is what matters.
NATIVE_ROWS = 256


class _Sklearn:
    """The model itself, on an array (the same object as in the pipeline: pickled once)."""

    def __init__(self, model: Any, method: str) -> None:
        self.model, self.method = model, method

    def __call__(self, X: np.ndarray, threads: int) -> np.ndarray:
        with warnings.catch_warnings():
            # Fitted on named columns, it warns at every unnamed call; the columns are the same.
            warnings.simplefilter("ignore", UserWarning)
            return np.asarray(getattr(self.model, self.method)(X), dtype=float)


class _Treelite:
    """A forest or an XGBoost model as a Treelite model (pickled as Treelite's bytes) for small
    batches, and the library's own predict (`native`) for large ones."""

    def __init__(self, model: Any, method: str, native: Any) -> None:
        import treelite.sklearn

        self.method, self.native = method, native
        if hasattr(model, "get_booster"):
            self.model = treelite.frontend.from_xgboost(model.get_booster())
        else:
            self.model = treelite.sklearn.import_model(model)
        # Both libraries compare float32 inputs with their thresholds (float64 ones in scikit-learn).
        self.dtype = np.float32 if self.model.input_type == "float32" else np.float64

    def __call__(self, X: np.ndarray, threads: int) -> np.ndarray:
        import treelite.gtil

        if len(X) >= NATIVE_ROWS:
            return self.native(X, threads)  # type: ignore[no-any-return]
        X = X.astype(np.float32)
        out = treelite.gtil.predict(self.model, np.ascontiguousarray(X, dtype=self.dtype), nthread=threads)
        out = out.reshape(len(X), -1)
        if self.method == "predict":
            return out[:, 0]
        return np.hstack([1.0 - out, out]) if out.shape[1] == 1 else out

    def __getstate__(self) -> dict[str, Any]:
        return {**vars(self), "model": self.model.serialize_bytes()}

    def __setstate__(self, state: dict[str, Any]) -> None:
        import treelite

        self.__dict__.update({**state, "model": treelite.Model.deserialize_bytes(state["model"])})


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


def _adapter(model: Any, method: str) -> Any:
    name = type(model).__name__
    # HistGradientBoosting is not among them: with categorical features it reorders its columns
    # through a private preprocessor that Treelite's importer does not follow (unseen levels differ).
    if name in ("RandomForestClassifier", "RandomForestRegressor", "ExtraTreesClassifier", "ExtraTreesRegressor"):
        return _Treelite(model, method, _Sklearn(model, method))
    if name in ("XGBClassifier", "XGBRegressor"):
        return _Treelite(model, method, _XGBoost(model, method))
    return _Sklearn(model, method)


def compile_model(model: Any, method: str, X: np.ndarray) -> Any | None:
    """A callable `(X, threads) -> predictions` equal to `model.<method>` on `X`, or None."""
    import pandas as pd

    expected = np.asarray(getattr(model, method)(pd.DataFrame(X, columns=_names(model, X))), dtype=float)
    for make in (_adapter, _Sklearn):
        try:
            fast = make(model, method)
            # Checked on both paths: a few rows, as a server sends them, and a large batch.
            repeat = -(-NATIVE_ROWS // len(X))
            large = np.repeat(X, repeat, axis=0)
            if same(fast(X, 1), expected, TOLERANCE) and same(fast(large, 1), np.repeat(expected, repeat, axis=0),
                                                              TOLERANCE):
                return fast
        except Exception:  # a model this version of a library cannot convert keeps its own predict
            continue
    return None


def _names(model: Any, X: np.ndarray) -> list[str]:
    inner = getattr(model, "regressor_", model)
    names = getattr(model, "feature_names_in_", getattr(inner, "feature_names_in_", None))
    return [str(n) for n in names] if names is not None else [f"x{i}" for i in range(X.shape[1])]
