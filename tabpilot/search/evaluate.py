"""Cross-validated evaluation of one configuration, and refits: the work a trial worker does.

A worker loads the training split and the plans once (`load_workload`), then runs many jobs.
Out-of-fold predictions are returned so the ensemble stage can combine trials without refitting.
"""
from __future__ import annotations

import hashlib
import os
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
from sklearn.base import clone
from sklearn.model_selection import RepeatedKFold, RepeatedStratifiedKFold, ShuffleSplit, StratifiedShuffleSplit

from tabpilot.core.artifacts import RunPaths, load_pickle, save_pickle
from tabpilot.core.config import Config
from tabpilot.core.metrics import Metric, resolve
from tabpilot.data.features import FeaturePlan, consensus, decisions
from tabpilot.data.files import Schema, read_parquet
from tabpilot.data.preprocessing import PreprocessPlan
from tabpilot.search.estimators import make_pipeline
from tabpilot.search.fold_bag import FoldBag
from tabpilot.search.predict_cost import describe

# Above this many training rows per second of budget, k-fold leaves too few trials: one 80/20
# holdout instead (diamonds, 40k rows at 60 s; cps1988, 21k rows, did better with 3 folds). With bagging
# the holdout model (80% of the rows) is the member: on large tables it is nearly as good as a refit,
# and the time a refit would take goes to the search.
HOLDOUT_ROWS_PER_SECOND = 500
HOLDOUT_SHARE = 0.2
# ...of at most this many rows: every trial predicts them, and more rows tell configurations apart no better.
HOLDOUT_MAX_ROWS = 50_000
# Where the budget is large for the data, one k-fold split lets a long search pick configurations
# by the luck of that split (titanic, chile_vote and ames scored worse at 300 s than at 60 s):
# below these training rows per second of budget the k-fold is repeated with new shuffles (3 times,
# twice), which steadies the estimate and gives each bag more models. (Above 6, the tables that
# did improve at 300 s, credit_data, caravan and hpc at 8-11 rows/s, keep their trial count.)
REPEAT_ROWS_PER_SECOND = (3.0, 6.0)
# A trial's fold models are kept for bagging only below this size: beyond it the disk writes and
# the DVC cache cost more than a refit.
MAX_KEPT_BYTES = 100_000_000


@dataclass
class Workload:
    """Everything a trial needs, loaded once per worker process."""

    X: pd.DataFrame
    y: np.ndarray
    folds: list[tuple[np.ndarray, np.ndarray]]
    n_folds: int  # per repeat; 1 = holdout
    schema: Schema
    plan: PreprocessPlan
    features: FeaturePlan
    config: Config
    metric: Metric
    root: Path

    def pipeline(self, candidate: dict[str, Any]) -> Any:
        search = self.config.search
        return make_pipeline(candidate, self.plan, self.features, self.config.preprocess,
                             self.schema.task, self.config.seed, None if search.max_trials else search.time_budget)


def encode_target(y: pd.Series, schema: Schema) -> np.ndarray:
    """Class labels to 0..k-1 in the schema's class order; regression targets to floats.

    The order is the schema's own, not a re-sort: the ensemble maps column i back to
    `schema.classes[i]`, and a re-sort by another key (1, 10, 2 against 1, 2, 10) swaps labels."""
    if schema.task == "regression":
        return y.to_numpy(dtype=float)
    codes = pd.Categorical(schema.labels(y), categories=schema.classes).codes
    if (codes < 0).any():
        unseen = sorted({str(v) for v in y.to_numpy()[codes < 0]})[:5]
        raise ValueError(f"y contains previously unseen labels: {unseen}")
    return codes.astype(np.int64)


def auto_folds(rows: int, time_budget: float | None = None) -> int:
    """Folds for a training set of `rows` rows: more folds where data is scarce, fewer where fits are
    slow, and a single holdout (1) where the data is large for the time budget."""
    if rows <= 10_000:
        return 5
    if time_budget is not None and rows > HOLDOUT_ROWS_PER_SECOND * time_budget:
        return 1
    return 3


def auto_repeats(rows: int, time_budget: float | None) -> int:
    """How often to repeat k-fold: more where the budget is large for the data."""
    if time_budget is None:
        return 1
    per_second = rows / time_budget
    return 3 if per_second < REPEAT_ROWS_PER_SECOND[0] else 2 if per_second < REPEAT_ROWS_PER_SECOND[1] else 1


def search_folds(config: Config, rows: int) -> tuple[int, int]:
    """Folds and repeats the search evaluates with (1 fold = holdout): configured, or chosen. Repeats
    are chosen only with the folds; configured folds are repeated only when repeats are configured."""
    search = config.search
    folds = search.cv_folds or auto_folds(rows, search.time_budget)
    if folds == 1:
        return 1, 1
    if search.cv_repeats:
        return folds, search.cv_repeats
    return folds, 1 if search.cv_folds else auto_repeats(rows, search.time_budget)


def holdout_share(rows: int) -> float:
    """The share of `rows` training rows a holdout validates on."""
    return min(HOLDOUT_SHARE, HOLDOUT_MAX_ROWS / max(rows, 1))


def make_folds(y: np.ndarray, task: str, n_folds: int | None, seed: int,
               repeats: int = 1) -> list[tuple[np.ndarray, np.ndarray]]:
    """k folds `repeats` times over (each row scored once per repeat), or with n_folds=1 one
    holdout split (`holdout_share` of the rows; its training rows in a random order, so the first n
    of them are a sample of n, within the next larger one)."""
    n_folds = n_folds or auto_folds(len(y))
    if n_folds == 1:
        kind = ShuffleSplit if task == "regression" else StratifiedShuffleSplit
        holdout = kind(n_splits=1, test_size=holdout_share(len(y)), random_state=seed)
        return list(holdout.split(np.zeros(len(y)), y))
    if task == "regression":
        splitter: Any = RepeatedKFold(n_splits=n_folds, n_repeats=repeats, random_state=seed)
    else:
        smallest = int(np.bincount(y).min())
        splitter = RepeatedStratifiedKFold(n_splits=max(2, min(n_folds, smallest)), n_repeats=repeats,
                                           random_state=seed)
    return list(splitter.split(np.zeros(len(y)), y))


def workload_files(paths: RunPaths) -> dict[str, bytes]:
    """What a workload is loaded from (and a refit with the test rows reads), by path in the run folder:
    shipped to the workers of a cluster that may not share this disk."""
    wanted = (paths.schema, paths.train, paths.test, paths.preprocess_plan, paths.features_plan)
    return {str(p.relative_to(paths.root)): p.read_bytes() for p in wanted if p.exists()}


def _unpacked(files: dict[str, bytes]) -> Path:
    """Shipped files in a folder of this machine's, one per content: workers on one machine share it."""
    digest = hashlib.sha256(b"".join(k.encode() + hashlib.sha256(v).digest() for k, v in sorted(files.items())))
    root = Path(tempfile.gettempdir()) / "tabpilot-shipped" / digest.hexdigest()[:16]
    for name, data in files.items():
        path = root / name
        if not path.exists():
            path.parent.mkdir(parents=True, exist_ok=True)
            staged = path.with_name(f"{path.name}.{os.getpid()}.part")
            staged.write_bytes(data)
            staged.replace(path)
    return root


def load_workload(root: str, config_json: dict[str, Any], files: dict[str, bytes] | None = None) -> Workload:
    """Build a Workload from a run directory (paths are strings so the call pickles cheaply), or from
    the `files` of one (`workload_files`) shipped to a worker of a cluster."""
    config = Config.model_validate(config_json)
    paths = RunPaths(_unpacked(files) if files is not None else Path(root))
    schema = Schema.load(paths.schema)
    frame = read_parquet(paths.train)
    y = encode_target(frame.pop(schema.target), schema)
    metric = resolve(config.search.metric, schema.task)
    n_folds, repeats = search_folds(config, len(y))
    folds = make_folds(y, schema.task, n_folds, config.seed, repeats)
    return Workload(frame, y, folds, n_folds, schema, PreprocessPlan.load(paths.preprocess_plan),
                    FeaturePlan.load(paths.features_plan), config, metric, paths.root)


def scored_rows(folds: list[tuple[np.ndarray, np.ndarray]]) -> np.ndarray:
    """The rows that get an out-of-fold prediction: all of them with k folds, the holdout's otherwise."""
    return np.unique(np.concatenate([valid for _, valid in folds]))


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
    # A late repeat (`repeat` r >= 1) runs the k-fold on a new shuffle and folds its predictions into
    # the trial's earlier ones (`merge`: their average and how many repeats it holds).
    repeat, merge = job.get("repeat", 0), job.get("merge")
    folds = make_folds(work.y, work.schema.task, work.n_folds, work.config.seed + repeat) if repeat else work.folds
    if job.get("rows") and len(folds) == 1:  # a rung below all rows (tabpilot.search.fidelity): the first n
        folds = [(folds[0][0][: job["rows"]], folds[0][1])]
    n_classes = len(work.schema.classes)
    oof = np.zeros(len(work.y)) if work.schema.task == "regression" else np.zeros((len(work.y), n_classes))
    seen = np.zeros(len(work.y))  # predictions per row: repeated k-fold averages them
    started = time.time()  # when the worker began it (the search records when it was sent)
    fold_scores = []
    predict_time = 0.0  # seconds predicting the validation rows: what predicting the test rows will cost
    predict_rows = 0
    chosen = []  # each fold model's feature decisions, for refits to keep (tabpilot.data.features.consensus)
    for i, (train_idx, valid_idx) in enumerate(folds):
        model = clone(work.pipeline(candidate))
        model.fit(work.X.iloc[train_idx], work.y[train_idx])
        if i == 0:
            first_model = model
        chosen.append(decisions(model))
        if keep_models:
            models.append(model)
        predicting = time.time()
        pred = predict(model, work.X.iloc[valid_idx], work.schema.task)
        predict_time += time.time() - predicting
        predict_rows += len(valid_idx)
        oof[valid_idx] += pred
        seen[valid_idx] += 1
        fold_scores.append(work.metric.score(work.y[valid_idx], pred))
        if i == 0:
            first_loss = work.metric.loss(work.y[valid_idx], pred)
            if prune_above is not None and len(folds) > 1 and first_loss > prune_above:
                return {"status": "pruned", "fit_time": time.time() - started, "fold_scores": fold_scores,
                        "first_fold_loss": first_loss,
                        "reason": f"first fold loss {first_loss:.4g} above {prune_above:.4g}"}
        per_fold = (time.time() - started) / (i + 1)
        remaining = len(folds) - i - 1
        if remaining and time.time() + per_fold * remaining > deadline:
            return {"status": "stopped", "fit_time": time.time() - started, "folds_done": i + 1,
                    "fold_scores": fold_scores, "first_fold_loss": first_loss,
                    "reason": "would overrun the search budget"}
    # Only the scored rows' predictions travel (all rows with k folds; a holdout's rows alone, a
    # twentieth of a million-row table's, held for dozens of trials by the search and its journal).
    rows = scored_rows(folds)
    oof = (oof[rows].T / seen[rows]).T
    if merge is not None:
        earlier, count = merge
        oof = (earlier * count + oof) / (count + 1)
    score = work.metric.score(work.y[rows], oof)
    kept = bool(keep_models) and _save_models(models, Path(keep_models), append=bool(repeat))
    return {"status": "ok", "score": score, "loss": work.metric.loss(work.y[rows], oof), "oof": oof,
            "fold_scores": fold_scores, "first_fold_loss": first_loss, "fit_time": time.time() - started,
            "folds_done": len(folds), "models_kept": kept, "began": started, "predict_time": predict_time,
            **({"rows": len(folds[0][0])} if job.get("rows") else {}),  # fewer than all: a lower rung
            "predict_rows": predict_rows,
            "predict_cost": describe(first_model), **({"decided": consensus(chosen)} if any(chosen) else {})}


def _save_models(models: list[Any], path: Path, append: bool = False) -> bool:
    """Save the fold models at `path` (after those already there, with `append`) unless they are
    too large to be worth keeping; returns whether the trial has a bag on disk."""
    if append:
        if not path.exists():  # the trial's first models were not kept: a partial bag is no bag
            return False
        models = load_pickle(path) + models
    staged = path.with_name(path.name + ".part")  # a worker killed mid-write leaves the bag whole
    save_pickle(models, staged)
    if staged.stat().st_size > MAX_KEPT_BYTES:
        staged.unlink()
        return append  # an earlier bag stays as it was
    staged.replace(path)
    return True


def refit(work: Workload, job: dict[str, Any]) -> dict[str, Any]:
    """Fit a candidate on the whole training split (plus the test split with `with_test`); with
    `bagged`, fit one model per fold (of each of `repeats` k-folds) of those rows instead, as a FoldBag."""
    started = time.time()
    X, y = work.X, work.y
    if job.get("with_test"):
        test = read_parquet(RunPaths(work.root).test)
        y = np.concatenate([y, encode_target(test.pop(work.schema.target), work.schema)])
        X = pd.concat([X, test], ignore_index=True)
    # A holdout "bag" is one model: on all rows it is refit as one model, not as a holdout again.
    if not job.get("bagged") or work.n_folds == 1:
        return {"status": "ok", "model": work.pipeline(job["candidate"]).fit(X, y), "fit_time": time.time() - started}
    # As many repeats as the trial was scored with: its averaged out-of-fold predictions, which the
    # ensemble chose it by, are those of a bag of k x repeats models (one k-fold of a late-repeated
    # MLP bagged 5 models where selection had valued 15: credit_data at 300 s lost 0.008 AUC).
    folds = make_folds(y, work.schema.task, work.n_folds, work.config.seed, job.get("repeats", 1))
    models = [clone(work.pipeline(job["candidate"])).fit(X.iloc[idx], y[idx]) for idx, _ in folds]
    split = {"task": work.schema.task, "n_folds": work.n_folds, "groups": [[work.config.seed, job.get("repeats", 1)]]}
    return {"status": "ok", "model": FoldBag(models, split).fit(), "fit_time": time.time() - started}
