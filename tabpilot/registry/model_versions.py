"""The register stage: log the model, register a version, and gate promotion against the champion.

The candidate and the current champion are scored on the same held-out split; the candidate takes
the alias `champion` only if it is better by `register.margin`, otherwise it becomes `challenger`.
The outgoing champion keeps the alias `previous`.
"""
from __future__ import annotations

import hashlib
import json
import subprocess
from collections.abc import Callable
from contextlib import AbstractContextManager as ContextManager
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from tabpilot.core.artifacts import RunPaths, read_json, write_json
from tabpilot.core.config import Config
from tabpilot.core.metrics import Metric, resolve
from tabpilot.core.progress import report
from tabpilot.data.files import Schema, read_parquet
from tabpilot.registry import pipeline_runs, tracking
from tabpilot.search.evaluate import encode_target


def score_frame(predictions: pd.DataFrame, y: np.ndarray, schema: Schema, metric: Metric) -> float:
    """Score a pyfunc model's output frame (`prediction`, `proba_<class>`) against encoded labels."""
    if schema.task == "regression":
        return metric.score(y, predictions["prediction"].to_numpy(dtype=float))
    proba = predictions[[_proba_column(predictions, c) for c in schema.classes]].to_numpy(dtype=float)
    return metric.score(y, proba)


def _proba_column(predictions: pd.DataFrame, label: Any) -> str:
    name = f"proba_{label}"
    # A champion trained before labels kept their type names integer and boolean classes as the
    # floats they were stored as (`proba_1.0`); it must still be scored, not skipped by the gate.
    if name not in predictions.columns and isinstance(label, int):
        return f"proba_{float(label)}"
    return name


def _champion_score(name: str, test: pd.DataFrame, y: np.ndarray, schema: Schema, metric: Metric) -> tuple[
        Any, float | None, str]:
    champion = tracking.alias_version(name, "champion")
    if champion is None:
        return None, None, "no champion yet"
    try:
        model = tracking.load_model(f"models:/{name}/{champion.version}")
        return champion, score_frame(model.predict(test), y, schema, metric), "scored on this test split"
    except Exception as error:  # an incompatible champion (other columns or classes) cannot block promotion
        return champion, None, f"champion cannot score this data ({type(error).__name__})"


def _git_commit() -> str:
    try:
        out = subprocess.run(["git", "rev-parse", "HEAD"], check=False, capture_output=True, text=True, timeout=5)
        return out.stdout.strip() or "unknown"
    except (OSError, subprocess.SubprocessError):
        return "unknown"


def register(cfg: Config, paths: RunPaths,
             lock: Callable[[str], ContextManager[None]] = tracking.promotion_lock) -> dict[str, Any]:
    """Log and register the ensemble; set `champion` or `challenger`; end the pipeline run.

    Idempotent for a pipeline run: a retry after a failure reuses the version already registered
    from this run. The gate and the alias change happen under the model's promotion lock, against
    the champion of that moment, so racing runs never both promote past the same champion; and the
    alias `champion` only ever moves from one version to another, so there is never none or two.
    """
    name = cfg.register_.name
    schema = Schema.load(paths.schema)
    metric = resolve(cfg.search.metric, schema.task)
    run_id = read_json(paths.run_info)["run_id"]
    metrics = read_json(paths.metrics)
    test = read_parquet(paths.test)
    y_test = encode_target(test.pop(schema.target), schema)
    candidate = float(metrics["test_score"])
    version = tracking.version_of_run(name, run_id)
    if version is None:
        report("register", "logging the model")
        pipeline_runs.log_validation(paths, run_id)  # the flow waited for validation before this stage
        model_uri = tracking.log_model(run_id, paths.ensemble, paths.contract, paths.model_dir)
        for path in (paths.contract, paths.profile, paths.member_configs):
            tracking.log_artifact(run_id, path, "model_contract")
        version = tracking.register_version(name, model_uri, run_id, _tags(cfg, schema, metric, candidate, paths))
    with lock(name):
        champion, champion_score, why = _champion_score(name, test, y_test, schema, metric)
        margin = cfg.register_.margin
        wins = champion_score is None or (candidate - margin > champion_score if metric.greater_is_better
                                          else candidate + margin < champion_score)
        if champion is not None and str(champion.version) == version:
            wins = False  # a retry after promoting: nothing left to do
            why = "already champion"
        if wins:
            if champion is not None:
                tracking.set_alias(name, "previous", str(champion.version))
            tracking.set_alias(name, "champion", version)
        elif why != "already champion":
            tracking.set_alias(name, "challenger", version)
    alias = "champion" if wins or why == "already champion" else "challenger"
    result = {"name": name, "version": version, "alias": alias, "model_uri": f"models:/{name}@{alias}",
              "metric": metric.name, "test_score": candidate, "champion_score": champion_score,
              "previous_champion": str(champion.version) if champion is not None and wins else None, "gate": why,
              "run_id": run_id}
    write_json(paths.registration, result)
    tracking.log(run_id, params={"registered_version": version}, tags={"alias": alias})
    tracking.log_artifact(run_id, paths.registration, "reports")
    tracking.end_run(run_id)
    return result


def _tags(cfg: Config, schema: Schema, metric: Metric, score: float, paths: RunPaths) -> dict[str, Any]:
    """What a registered version says about where it came from."""
    def digest(data: Any) -> str:
        return hashlib.sha256(json.dumps(data, sort_keys=True).encode()).hexdigest()[:16]

    return {"metric": metric.name, "test_score": score, "data_fingerprint": schema.fingerprint,
            "params_hash": digest(cfg.to_dict()), "contract_version": digest(read_json(paths.contract)),
            "data_md5": data_md5(cfg, paths), "git_commit": _git_commit(), "time_budget": cfg.search.time_budget,
            "task": schema.task}


def data_md5(cfg: Config, paths: RunPaths) -> str:
    """DVC's hash of the training data, as `dvc add FILE` records it (the md5 of the file's bytes):
    the input file's, or for a bundled dataset (no file of the user's) the ingested table's."""
    source = Path(cfg.data.path)
    with (source if source.is_file() else paths.raw).open("rb") as data:
        return hashlib.file_digest(data, "md5").hexdigest()


def rollback(name: str) -> tuple[str, str]:
    """Move `champion` back to the `previous` version; returns (demoted, restored) versions."""
    from tabpilot.core.errors import UserError

    champion, previous = tracking.alias_version(name, "champion"), tracking.alias_version(name, "previous")
    if champion is None or previous is None:
        raise UserError(f"model '{name}' has no 'previous' version to roll back to: nothing changed")
    tracking.set_alias(name, "champion", str(previous.version))
    tracking.set_alias(name, "rolled_back", str(champion.version))
    tracking.delete_alias(name, "previous")
    return str(champion.version), str(previous.version)
