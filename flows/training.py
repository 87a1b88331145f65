"""The training flow: every stage a task, in order, one flow run per pipeline run."""
from __future__ import annotations

import time
from pathlib import Path
from threading import Event
from typing import Any

from prefect import flow

from tabpilot import pipeline_run
from tabpilot.artifacts import RunPaths
from tabpilot.config import Config, parse
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

# The stages in order; the search and ensemble stages also get the budget clock's start.
DATA_STAGES = [("ingest", ingest_data), ("validate", validate_data)]
MODEL_STAGES = [("split", split_data), ("preprocess", plan_preprocessing), ("features", plan_features),
                ("search", search_models), ("ensemble", build_ensemble), ("register", register_model)]
TIMED = ("search", "ensemble")


def budget_start(started: float | None) -> float:
    """When the budget clock started: the user's command (the whole run keeps to the budget), or now."""
    return started or time.time()


def run_stages(stages: list[tuple[str, Any]], cfg: Config, paths: RunPaths, started: float,
               records: dict[str, Any]) -> None:
    """Run each stage's task in order, recording its result and seconds; a failure marks the
    pipeline's MLflow run failed before it propagates."""
    try:
        for name, stage in stages:
            began = time.time()
            records[name] = stage(cfg, paths, *((started,) if name in TIMED else ()))
            records[name]["seconds"] = round(time.time() - began, 2)
    except BaseException as error:
        pipeline_run.fail_run(paths, f"{type(error).__name__}: {error}")
        raise


@flow(name="tabpilot-train", log_prints=True)
def train(params: dict[str, Any], workdir: str, started: float | None = None) -> dict[str, Any]:
    """Validate, split, plan, search, ensemble and register; returns each stage's record.

    `params` is the params.yaml mapping (small, so it is a valid flow parameter); `started` is when
    the user's command began (see `budget_start`). Validation runs beside the search and ensemble
    (Great Expectations alone takes seconds to start); a broken contract stops the search and fails
    the run before anything is registered.
    """
    cfg = parse(params, source="flow parameters")
    paths = RunPaths(Path(workdir))
    started = budget_start(started)
    paths.run_info.unlink(missing_ok=True)  # a previous run's id must not be failed or reused
    records: dict[str, Any] = {}
    run_stages(DATA_STAGES[:1], cfg, paths, started, records)
    broken = Event()
    validation = None
    try:
        run_stages(MODEL_STAGES[:3], cfg, paths, started, records)
        # Started only now: beside the split and plans its thread held the GIL they need; it runs
        # while the main thread waits on the search's workers.
        validation = validate_data.submit(cfg, paths)
        validation.add_done_callback(lambda done: broken.set() if _failed(done) else None)
        for name, stage in MODEL_STAGES[3:5]:
            if broken.is_set():
                break  # the contract's error is raised below
            began = time.time()
            records[name] = stage(cfg, paths, started, **({"stop": broken.is_set, "prestart_refits": True}
                                                          if name == "search" else {}))
            records[name]["seconds"] = round(time.time() - began, 2)
        records["validate"] = validation.result()  # a broken contract raises here, before registering
    except BaseException as error:
        pipeline_run.fail_run(paths, f"{type(error).__name__}: {error}")
        if validation is None:
            raise
        validation.wait()
        if broken.is_set():
            validation.result()  # the contract's error is the one to report
        raise
    run_stages(MODEL_STAGES[5:], cfg, paths, started, records)
    records["seconds"] = round(time.time() - started, 1)
    return records


def _failed(future: Any) -> bool:
    try:
        future.result()
    except BaseException:
        return True
    return False
