"""Cross-validated evaluation of one configuration, and refits: the work a trial worker does.

A worker loads the training split and the plans once (`load_workload`), then runs many jobs.
Out-of-fold predictions are returned so the ensemble stage can combine trials without refitting.
"""
from __future__ import annotations

import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
from sklearn.base import clone
from sklearn.model_selection import KFold, StratifiedKFold
from sklearn.preprocessing import LabelEncoder

from tabpilot.artifacts import RunPaths, save_pickle
from tabpilot.config import Config
from tabpilot.ensemble import FoldBag
from tabpilot.features import FeaturePlan
from tabpilot.io import Schema
from tabpilot.metrics import Metric, resolve
from tabpilot.models import make_pipeline
from tabpilot.preprocessing import PreprocessPlan

# A trial's fold models are kept for bagging only below this size: beyond it the disk writes and
# the DVC cache cost more than a refit.
MAX_KEPT_BYTES = 100_000_000


@dataclass
class Workload:
    """Everything a trial needs, loaded once per worker process."""

    X: pd.DataFrame
    y: np.ndarray
    folds: list[tuple[np.ndarray, np.ndarray]]
    schema: Schema
    plan: PreprocessPlan
    features: FeaturePlan
    config: Config
    metric: Metric
    root: Path

    def pipeline(self, candidate: dict[str, Any]) -> Any:
        return make_pipeline(candidate, self.plan, self.features, self.config.preprocess,
                             self.schema.task, self.config.seed)


def encode_target(y: pd.Series, schema: Schema) -> np.ndarray:
    """Class labels to 0..k-1 in the schema's class order; regression targets to floats."""
    if schema.task == "regression":
        return y.to_numpy(dtype=float)
    encoder = LabelEncoder().fit(np.array(schema.classes, dtype=object))
    return encoder.transform(y.to_numpy(dtype=object))


def auto_folds(rows: int) -> int:
    """Folds for a training set of `rows` rows: more folds where data is scarce, fewer where fits are slow."""
    return 5 if rows <= 10_000 else 3


def make_folds(y: np.ndarray, task: str, n_folds: int | None, seed: int) -> list[tuple[np.ndarray, np.ndarray]]:
    n_folds = n_folds or auto_folds(len(y))
    if task == "regression":
        splitter: Any = KFold(n_folds, shuffle=True, random_state=seed)
    else:
        smallest = int(np.bincount(y).min())
        splitter = StratifiedKFold(max(2, min(n_folds, smallest)), shuffle=True, random_state=seed)
    return list(splitter.split(np.zeros(len(y)), y))


def load_workload(root: str, config_json: dict[str, Any]) -> Workload:
    """Build a Workload from a run directory (paths are strings so the call pickles cheaply)."""
    config = Config.model_validate(config_json)
    paths = RunPaths(Path(root))
    schema = Schema.load(paths.schema)
    frame = pd.read_parquet(paths.train)
    y = encode_target(frame.pop(schema.target), schema)
    metric = resolve(config.search.metric, schema.task)
    folds = make_folds(y, schema.task, config.search.cv_folds, config.seed)
    return Workload(frame, y, folds, schema, PreprocessPlan.load(paths.preprocess_plan),
                    FeaturePlan.load(paths.features_plan), config, metric, paths.root)


def predict(model: Any, X: pd.DataFrame, task: str) -> np.ndarray:
    """Probabilities for classifiers, values for regressors."""
    return model.predict(X) if task == "regression" else model.predict_proba(X)


def cross_validate(work: Workload, job: dict[str, Any]) -> dict[str, Any]:
    """Fit and score a candidate on every fold.

    Stops early when the remaining folds cannot finish by the deadline (`stopped`), or when the
    first fold's loss is above `prune_above` (`pruned`: a clear loser, by the first rung of
    successive halving), so the budget goes to promising candidates. With `keep_models` (a path)
    a finished trial saves its fold models there, for the ensemble to reuse as a bag.
    """
    candidate, deadline = job["candidate"], job["deadline"]
    keep_models = job.get("keep_models")
    models = []
    prune_above = job.get("prune_above")
    n_classes = len(work.schema.classes)
    oof = np.zeros(len(work.y)) if work.schema.task == "regression" else np.zeros((len(work.y), n_classes))
    started = time.time()
    fold_scores = []
    for i, (train_idx, valid_idx) in enumerate(work.folds):
        model = clone(work.pipeline(candidate))
        model.fit(work.X.iloc[train_idx], work.y[train_idx])
        if keep_models:
            models.append(model)
        oof[valid_idx] = predict(model, work.X.iloc[valid_idx], work.schema.task)
        fold_scores.append(work.metric.score(work.y[valid_idx], oof[valid_idx]))
        if i == 0:
            first_loss = work.metric.loss(work.y[valid_idx], oof[valid_idx])
            if prune_above is not None and len(work.folds) > 1 and first_loss > prune_above:
                return {"status": "pruned", "fit_time": time.time() - started, "fold_scores": fold_scores,
                        "first_fold_loss": first_loss,
                        "reason": f"first fold loss {first_loss:.4g} above {prune_above:.4g}"}
        per_fold = (time.time() - started) / (i + 1)
        remaining = len(work.folds) - i - 1
        if remaining and time.time() + per_fold * remaining > deadline:
            return {"status": "stopped", "fit_time": time.time() - started, "folds_done": i + 1,
                    "fold_scores": fold_scores, "first_fold_loss": first_loss,
                    "reason": "would overrun the search budget"}
    score = work.metric.score(work.y, oof)
    kept = bool(keep_models) and _save_models(models, Path(keep_models))
    return {"status": "ok", "score": score, "loss": work.metric.loss(work.y, oof), "oof": oof,
            "fold_scores": fold_scores, "first_fold_loss": first_loss, "fit_time": time.time() - started,
            "folds_done": len(work.folds), "models_kept": kept}


def _save_models(models: list[Any], path: Path) -> bool:
    """Save the fold models at `path` unless they are too large to be worth keeping."""
    save_pickle(models, path)
    if path.stat().st_size <= MAX_KEPT_BYTES:
        return True
    path.unlink()
    return False


def refit(work: Workload, job: dict[str, Any]) -> dict[str, Any]:
    """Fit a candidate on the whole training split (plus the test split with `with_test`); with
    `bagged`, fit one model per fold of those rows instead, as a FoldBag."""
    started = time.time()
    X, y = work.X, work.y
    if job.get("with_test"):
        test = pd.read_parquet(RunPaths(work.root).test)
        y = np.concatenate([y, encode_target(test.pop(work.schema.target), work.schema)])
        X = pd.concat([X, test], ignore_index=True)
    if not job.get("bagged"):
        return {"status": "ok", "model": work.pipeline(job["candidate"]).fit(X, y), "fit_time": time.time() - started}
    folds = make_folds(y, work.schema.task, len(work.folds), work.config.seed)
    models = [clone(work.pipeline(job["candidate"])).fit(X.iloc[idx], y[idx]) for idx, _ in folds]
    return {"status": "ok", "model": FoldBag(models).fit(), "fit_time": time.time() - started}
