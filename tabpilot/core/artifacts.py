"""Every path a stage reads or writes, defined once. Stages hand each other files at these paths."""
from __future__ import annotations

import json
import pickle
from dataclasses import dataclass
from pathlib import Path
from typing import Any


def _at(*parts: str, doc: str = "") -> property:
    return property(lambda self: self.root.joinpath(*parts), doc=doc)


@dataclass(frozen=True)
class RunPaths:
    """The layout of one run's working directory (the repo root under DVC, runs/NAME for train)."""

    root: Path

    raw = _at("data", "raw", "data.parquet")
    schema = _at("data", "raw", "schema.json")
    contract = _at("artifacts", "contract.json")
    profile = _at("artifacts", "profile.json", doc="The training data's drift profile (bins and shares).")
    member_configs = _at("artifacts", "member_configs.json", doc="The ensemble members' configurations.")
    champion_dir = _at("artifacts", "champion", doc="What a retrain fetched from the champion it challenges.")
    drift_report = _at("reports", "drift.json")
    retrain_summary = _at("reports", "retrain.json")
    validation_report = _at("reports", "validation.json")
    data_docs = _at("reports", "data_docs")
    train = _at("data", "prepared", "train.parquet")
    test = _at("data", "prepared", "test.parquet")
    preprocess_plan = _at("artifacts", "preprocess.json")
    features_plan = _at("artifacts", "features.json")
    search_dir = _at("artifacts", "search")
    trials = _at("artifacts", "search", "trials.json")
    leaderboard = _at("artifacts", "search", "leaderboard.csv")
    oof = _at("artifacts", "search", "oof.npz")
    journal = _at("artifacts", "journal", doc="Every trial as sent and as finished, until the model is registered: "
                  "`--resume` reads it. Not a DVC output (it holds every trial's predictions).")
    fold_models = _at("artifacts", "search", "fold_models",
                      doc="One pickle per kept trial: its fitted fold models, for bagging.")
    ensemble = _at("artifacts", "ensemble.pkl")
    model_dir = _at("artifacts", "model")
    metrics = _at("reports", "metrics.json")
    pareto = _at("reports", "pareto.json",
                 doc="The Pareto front of score, latency and size (search.objective: pareto).")
    plots = _at("reports", "plots", doc="The run's figures (PNG), also logged to MLflow.")
    features_report = _at("reports", "features.json",
                          doc="Per ensemble member: feature settings, constructed, kept and dropped features.")
    registration = _at("reports", "registration.json")
    run_info = _at("artifacts", "search", "run.json",
                doc="The MLflow parent run id and timing shared by the stages of one pipeline run.")

    def fold_models_of(self, trial: int) -> Path:
        return self.fold_models / f"trial_{trial}.pkl"


def save_pickle(obj: Any, path: Path) -> None:
    """Fitted models to disk. The C pickler, not joblib's Python one: forests hold thousands of small
    objects, which joblib dumps and loads ~5x slower (3 s against 0.5 s for a 30 MB ensemble)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    with path.open("wb") as sink:
        pickle.dump(obj, sink, protocol=pickle.HIGHEST_PROTOCOL)


def load_pickle(path: Path | str) -> Any:
    if Path(path).suffix == ".joblib":  # models registered before 0.2 were saved by joblib
        import joblib

        return joblib.load(path)
    with Path(path).open("rb") as source:
        return pickle.load(source)


def write_json(path: Path, data: Any) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(data, indent=2, default=str))


def read_json(path: Path) -> Any:
    return json.loads(path.read_text())
