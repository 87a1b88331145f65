"""The pipeline's MLflow run: opened with the run's inputs when the search starts, given the
validation's results once they are in, and marked failed when a stage fails."""
from __future__ import annotations

import time

import pandas as pd

from tabpilot.core.artifacts import RunPaths, read_json, write_json
from tabpilot.core.config import Config
from tabpilot.core.errors import UserError
from tabpilot.data.files import Schema
from tabpilot.registry import tracking


def open_run(cfg: Config, paths: RunPaths, schema: Schema, started: float) -> str:
    """The pipeline's MLflow run, with the run's inputs; its id is kept in the run's files."""
    experiment = cfg.register_.name
    run_id = tracking.start_run(experiment, f"{experiment}-{time.strftime('%Y%m%d-%H%M%S')}",
                                {"tabpilot.kind": "pipeline", "task": schema.task})
    write_json(paths.run_info, {"run_id": run_id, "experiment": experiment, "started": started})
    _log_inputs(cfg, paths, run_id, schema)
    return run_id


def reopen_run(cfg: Config, paths: RunPaths, schema: Schema, started: float) -> tuple[str, dict[int, str]]:
    """The pipeline run a resumed search continues, running again, and its finished trials' child runs
    by trial id; a new run if the killed one never reached the tracking store. A run that finished
    (and registered its model) is not resumed."""
    if paths.run_info.exists():
        run_id = read_json(paths.run_info)["run_id"]
        status = tracking.reopen_run(run_id)
        if status == "FINISHED":
            raise UserError(f"--resume: the run in {paths.root} finished and registered its model: nothing to "
                            "resume; run without --resume to train again")
        if status is not None:
            return run_id, tracking.trial_runs(cfg.register_.name, run_id)
    return open_run(cfg, paths, schema, started), {}


def _log_inputs(cfg: Config, paths: RunPaths, run_id: str, schema: Schema) -> None:
    """The earlier stages' results, on the pipeline run: params, schema, data and plans. (The
    contract and validation report come with the registration: validation may still be running.)"""
    flat = pd.json_normalize(cfg.to_dict(), sep=".").iloc[0].to_dict()
    tracking.log(run_id, params=flat, tags={"data.fingerprint": schema.fingerprint, "data.rows": schema.rows})
    for split, path in (("training", paths.train), ("test", paths.test)):
        tracking.log_dataset(run_id, path, cfg.data.path, f"{cfg.register_.name}-{split}", schema.target, split)
    for path in (paths.schema, paths.preprocess_plan, paths.features_plan):
        tracking.log_artifact(run_id, path, "inputs")


def log_validation(paths: RunPaths, run_id: str) -> None:
    """The data contract, the validation report and its Data Docs, on the pipeline run."""
    for path in (paths.contract, paths.validation_report):
        tracking.log_artifact(run_id, path, "inputs")
    tracking.log_artifact(run_id, paths.data_docs, "data_docs")


def fail_run(paths: RunPaths, message: str) -> None:
    """Mark the pipeline run failed (if this run started one) so no half-finished run looks complete."""
    if paths.run_info.exists():
        run_id = read_json(paths.run_info)["run_id"]
        tracking.log(run_id, tags={"error": message[:5000]})
        tracking.end_run(run_id, "FAILED")
