"""Greedy ensemble selection with replacement (Caruana et al., 2004) and the fitted ensemble model."""
from __future__ import annotations

import gc
import os
import sys
from collections import Counter
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any

import numpy as np
import pandas as pd
from sklearn.base import BaseEstimator
from sklearn.pipeline import Pipeline

from tabpilot.core.metrics import Metric
from tabpilot.search.fold_bag import FoldBag, shared_output

# Below this many rows a prediction is mostly Python overhead per pipeline, and OpenMP/BLAS thread
# teams only add start-up and spin-wait contention: the demo's ensemble took 256 ms for one row in
# a worker thread (where the scoring server predicts) with 2 threads, 191 ms with one; 1,000 rows
# 482 against 434 ms. From about 2,000 rows the threads pay (10,000 rows: 2.2 s against 2.6 s).
SINGLE_THREAD_ROWS = 2000
CHUNK_ROWS = 20_000  # the most rows one thread predicts at once in a larger batch


def _cores() -> int:
    """The cores this process may run on."""
    return len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count() or 1


def caruana_select(oof: dict[int, np.ndarray], y: np.ndarray, metric: Metric, rounds: int,
                   admit: Callable[[set[int], int], bool] | None = None) -> dict[int, float]:
    """Weights per trial from greedy forward selection with replacement over out-of-fold predictions.

    Starts from the single best trial, adds at each round the trial whose inclusion gives the best
    averaged prediction, and returns the weights at the best point of that trajectory (so extra
    rounds that only add noise are cut back). Ties go to the lower trial id, for reproducibility.
    `admit(members, trial)` may bar a trial that is not yet a member (a latency limit does).
    """
    if not oof:
        raise ValueError("no trial has out-of-fold predictions to ensemble")
    ids = sorted(oof)

    def pool(members: set[int]) -> list[int]:
        return [t for t in ids if admit is None or t in members or admit(members, t)]

    losses = {t: metric.loss(y, oof[t]) for t in ids}
    first = min(pool(set()), key=lambda t: (losses[t], t))
    chosen = [first]
    total = oof[first].astype(float).copy()
    best_loss, best_size = losses[first], 1
    for _ in range(rounds - 1):
        n = len(chosen) + 1
        allowed = pool(set(chosen))
        candidate_losses = {t: metric.loss(y, (total + oof[t]) / n) for t in allowed}
        pick = min(allowed, key=lambda t: (candidate_losses[t], t))
        chosen.append(pick)
        total += oof[pick]
        if candidate_losses[pick] < best_loss - 1e-12:
            best_loss, best_size = candidate_losses[pick], n
    counts = Counter(chosen[:best_size])
    return {t: c / best_size for t, c in sorted(counts.items())}


def apply_temperature(proba: np.ndarray, temperature: float) -> np.ndarray:
    """Soften (T > 1) or sharpen (T < 1) class probabilities; T = 1 leaves them unchanged."""
    if temperature == 1.0:
        return proba
    logits = np.log(np.clip(proba, 1e-15, 1.0)) / temperature
    logits -= logits.max(axis=1, keepdims=True)
    scaled = np.exp(logits)
    return scaled / scaled.sum(axis=1, keepdims=True)


def fit_temperature(proba: np.ndarray, y: np.ndarray) -> float:
    """The temperature that minimises log loss on out-of-fold probabilities (one parameter: hard to overfit)."""
    from scipy.optimize import minimize_scalar

    def loss(log_t: float) -> float:
        p = apply_temperature(proba, float(np.exp(log_t)))
        return float(-np.mean(np.log(np.clip(p[np.arange(len(y)), y], 1e-15, 1.0))))

    found = minimize_scalar(loss, bounds=(-3.0, 3.0), method="bounded")
    return float(np.exp(found.x)) if found.fun < loss(0.0) else 1.0


def stack_features(predictions: list[np.ndarray], task: str) -> np.ndarray:
    """Members' predictions as a stacker's inputs: log-probabilities (one column for binary) or values."""
    if task == "regression":
        return np.column_stack(predictions)
    columns = []
    for proba in predictions:
        logs = np.log(np.clip(np.asarray(proba, dtype=float), 1e-6, 1.0))
        columns.append(logs[:, 1:] - logs[:, :1] if logs.shape[1] == 2 else logs)
    return np.hstack(columns)


def make_stacker(task: str, seed: int) -> Any:
    """A deliberately simple second level: few parameters, so it learns the blend, not the noise."""
    from sklearn.linear_model import LinearRegression, LogisticRegression
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler

    if task == "regression":
        return LinearRegression(positive=True)
    # Members' log-probabilities are nearly collinear and reach -14: unscaled, lbfgs needed 805
    # iterations per fit on diamonds_cut (46 s of stacking check, a 60 s run took 111 s); scaled, 106.
    return make_pipeline(StandardScaler(), LogisticRegression(C=1.0, max_iter=2000, random_state=seed))


def stacking_oof(oof: list[np.ndarray], y: np.ndarray, task: str, folds: list[Any], seed: int) -> np.ndarray:
    """Out-of-fold predictions of a stacker trained on out-of-fold predictions (honest, unlike the blend)."""
    from sklearn.model_selection import cross_val_predict

    method = "predict" if task == "regression" else "predict_proba"
    return cross_val_predict(make_stacker(task, seed), stack_features(oof, task), y, cv=folds, method=method)


def share_preprocessors(members: list[Any]) -> int:
    """Point every pipeline whose fitted first step equals another's (same state, by joblib's hash)
    at one object, and return how many distinct ones remain.

    Trials scored on the same folds fit the same preprocessing on the same rows, so an ensemble of
    bags holds many identical copies. Shared, they run once per prediction (a single row costs a
    few ms per preprocessor) and pickle once."""
    import joblib

    canonical: dict[str, Any] = {}
    for model in pipelines(members):
        name, step = model.steps[0]
        model.steps[0] = (name, canonical.setdefault(joblib.hash(step), step))
    return len(canonical)


def pipelines(members: list[Any]) -> Iterator[Pipeline]:
    """Every Pipeline of a preprocessing step and a model among `members`, bags opened."""
    for member in members:
        for model in member.models if isinstance(member, FoldBag) else [member]:  # type: ignore[union-attr]
            if isinstance(model, Pipeline) and len(model.steps) >= 2:
                yield model


_CONTROLLER: list[Any] = []  # (modules loaded when it was made, the controller)


def _threadpools() -> Any:
    """The process's OpenMP/BLAS pools, found again only when modules were imported since (a fresh
    lookup costs ~3 ms a prediction; a library loaded after it, as LightGBM's OpenMP, would escape
    the one-thread limit of small predictions)."""
    from threadpoolctl import ThreadpoolController

    if not _CONTROLLER or _CONTROLLER[0] != len(sys.modules):
        _CONTROLLER[:] = [len(sys.modules), ThreadpoolController()]
    return _CONTROLLER[1]


@contextmanager
def _collections_paused() -> Iterator[None]:
    """The cyclic garbage collector off for one large batch: it allocates a list per row (text
    tokens), and each collection then walks the model's objects too (0.3 s of 1.3 s for the demo's
    100,000 rows). Nothing it makes is cyclic; reference counting frees it."""
    paused = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if paused:
            gc.enable()


class EnsembleModel(BaseEstimator):
    """A weighted average of fitted pipelines that takes raw rows.

    Classifiers average probabilities over the training classes (`classes_`, original labels),
    optionally temperature-scaled (calibration for log loss), and predict the most probable label;
    regressors average values. With a fitted `stacker` the members' predictions are combined by it
    instead of by the weights.
    """

    def __init__(self, members: list[Any] | None = None, weights: list[float] | None = None,
                 task: str = "binary", classes: list[Any] | None = None, temperature: float = 1.0,
                 stacker: Any = None) -> None:
        self.members = members
        self.weights = weights
        self.task = task
        self.classes = classes
        self.temperature = temperature
        self.stacker = stacker

    def fit(self, X: Any = None, y: Any = None) -> EnsembleModel:
        """Members arrive fitted; fit only checks them and records the learned attributes."""
        if not self.members or not self.weights or len(self.members) != len(self.weights):
            raise ValueError("an ensemble needs as many fitted members as weights")
        total = float(sum(self.weights))
        self.weights_ = np.asarray(self.weights, dtype=float) / total
        # In the labels' own dtype (int64, bool, object for text), so `prediction` keeps it too.
        labels = list(self.classes) if self.classes is not None else []
        self.classes_ = pd.Series(labels, dtype=object).infer_objects().to_numpy()
        self.preprocessors_ = share_preprocessors(self.members)
        return self

    def _average(self, X: pd.DataFrame) -> np.ndarray:
        method = "predict" if self.task == "regression" else "predict_proba"
        if len(X) < SINGLE_THREAD_ROWS:
            with _threadpools().limit(limits=1):
                outputs = self._outputs(X, method)
        else:
            outputs = self._outputs_on_every_core(X, method)
        if self.stacker is not None:
            return getattr(self.stacker, method)(stack_features(outputs, self.task))
        return sum(w * p for p, w in zip(outputs, self.weights_, strict=True))  # type: ignore[return-value]

    def _outputs(self, X: pd.DataFrame, method: str) -> list[np.ndarray]:
        """Each member's predictions of `X`, on the threads the process's pools allow."""
        compiled = getattr(self, "compiled_", None)
        if compiled is not None and getattr(compiled, "current", False):
            return compiled.outputs(X, method, 1)  # type: ignore[no-any-return]
        from tabpilot.data.request_columns import Columns

        X = X.frame if isinstance(X, Columns) else X  # a small request's arrays (the server's)
        transformed: dict[int, Any] = {}
        return [shared_output(m, X, method, transformed) for m in self.members]  # type: ignore[union-attr]

    def _outputs_on_every_core(self, X: pd.DataFrame, method: str) -> list[np.ndarray]:
        """`_outputs` of a large batch, in row chunks predicted by one thread per core, each on one
        thread: while one chunk holds the GIL (text, table lookups), another runs trees or matrix
        products, which release it (benchmarks/results/predict_rows.json)."""
        from concurrent.futures import ThreadPoolExecutor

        cores = _cores()
        chunks = max(2 * cores, -(-len(X) // CHUNK_ROWS))
        bounds = np.linspace(0, len(X), chunks + 1).astype(int)
        parts = [X.iloc[a:b] for a, b in zip(bounds[:-1], bounds[1:], strict=True)]
        # BLAS pools are the process's, limited here; OpenMP's thread count is each thread's own, so
        # every worker limits its own (and ends with the pool: nothing to restore).
        with _threadpools().limit(limits=1), _collections_paused(), ThreadPoolExecutor(
                cores, initializer=lambda: _threadpools().limit(limits=1, user_api="openmp")) as pool:
            done = list(pool.map(lambda part: self._outputs(part, method), parts))
        return [np.concatenate([d[k] for d in done]) for k in range(len(done[0]))]

    def compile(self, rows: pd.DataFrame, seed: int) -> dict[str, int]:
        """Compile the members for inference (tabpilot.ensemble.compiled), checked on `rows`; returns what was."""
        from tabpilot.ensemble.compiled import compile_ensemble

        folds = [m.models if isinstance(m, FoldBag) else [m] for m in self.members]  # type: ignore[union-attr]
        self.compiled_ = compile_ensemble(folds, self.task, rows, seed)
        return self.compiled_.summary

    def predict_proba(self, X: pd.DataFrame) -> np.ndarray:
        if self.task == "regression":
            raise AttributeError("a regression ensemble has no predict_proba")
        return apply_temperature(self._average(X), self.temperature)

    def predict(self, X: pd.DataFrame) -> np.ndarray:
        if self.task == "regression":
            return self._average(X)
        return self.classes_[self.predict_proba(X).argmax(axis=1)]

    def predict_frame(self, X: pd.DataFrame) -> pd.DataFrame:
        """Predictions as a frame: `prediction`, plus `proba_<class>` per class for classifiers."""
        return self.frame(X.index, self.predict(X) if self.task == "regression" else self.predict_proba(X))

    def records(self, X: pd.DataFrame | Any) -> list[dict[str, Any]]:
        """`predict_frame(X)`'s rows as plain Python dicts, without building a frame (a server
        answering a few rows spends a millisecond on the frame alone)."""
        if self.task == "regression":
            return [{"prediction": v} for v in self.predict(X).tolist()]
        proba = self.predict_proba(X)
        names = [f"proba_{label}" for label in self.classes_]
        return [{"prediction": label, **dict(zip(names, row, strict=True))}
                for label, row in zip(self.classes_[proba.argmax(axis=1)].tolist(), proba.tolist(), strict=True)]

    def frame(self, index: pd.Index, predicted: np.ndarray) -> pd.DataFrame:
        """`predict_frame` of rows already predicted (values, or probabilities for classifiers)."""
        if self.task == "regression":
            return pd.DataFrame({"prediction": predicted}, index=index)
        out = pd.DataFrame({"prediction": self.classes_[predicted.argmax(axis=1)]}, index=index)
        for i, label in enumerate(self.classes_):
            out[f"proba_{label}"] = predicted[:, i]
        return out
