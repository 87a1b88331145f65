"""The training flow: every stage a task, in order, one flow run per pipeline run."""
from __future__ import annotations

import time
from pathlib import Path
from typing import Any

from prefect import flow

from tabpilot import modeling
from tabpilot.artifacts import RunPaths
from tabpilot.config import parse
from tasks.stages import (
    build_ensemble,
    ingest_data,
    plan_features,
    plan_preprocessing,
    register_model,
    search_models,
    split_data,
    validate_data,
)

STARTUP_ALLOWANCE = 10.0


@flow(name="tabpilot-train", log_prints=True)
def train(params: dict[str, Any], workdir: str, started: float | None = None) -> dict[str, Any]:
    """Validate, split, plan, search, ensemble and register; returns each stage's record.

    `params` is the params.yaml mapping (small, so it is a valid flow parameter); `started` is when
    the user's command began. The budget clock starts then, but at most STARTUP_ALLOWANCE seconds
    of orchestrator start-up (Prefect's ephemeral server takes 7-14 s) are left off the budget.
    """
    cfg = parse(params, source="flow parameters")
    paths = RunPaths(Path(workdir))
    now = time.time()
    started = min(now, (started or now) + STARTUP_ALLOWANCE)
    paths.run_info.unlink(missing_ok=True)  # a previous run's id must not be failed or reused
    records: dict[str, Any] = {}
    stages = [("ingest", ingest_data, ()), ("validate", validate_data, ()), ("split", split_data, ()),
              ("preprocess", plan_preprocessing, ()), ("features", plan_features, ()),
              ("search", search_models, (started,)), ("ensemble", build_ensemble, (started,)),
              ("register", register_model, ())]
    try:
        for name, stage, extra in stages:
            began = time.time()
            records[name] = stage(cfg, paths, *extra)
            records[name]["seconds"] = round(time.time() - began, 2)
    except BaseException as error:
        modeling.fail_run(paths, f"{type(error).__name__}: {error}")
        raise
    records["seconds"] = round(time.time() - started, 1)
    return records
