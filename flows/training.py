"""The training flow: tabpilot's runner (tabpilot.runner) with every stage a Prefect task, one flow
run per pipeline run."""
from __future__ import annotations

import time
from pathlib import Path
from typing import Any

from prefect import flow

from tabpilot import runner
from tabpilot.core.artifacts import RunPaths
from tabpilot.core.config import parse
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

TASKS = {"ingest": ingest_data, "validate": validate_data, "split": split_data, "preprocess": plan_preprocessing,
         "features": plan_features, "search": search_models, "ensemble": build_ensemble, "register": register_model}


def budget_start(started: float | None) -> float:
    """When the budget clock started: the user's command (the whole run keeps to the budget), or now."""
    return started or time.time()


def run_stages(names: tuple[str, ...], cfg: Any, paths: RunPaths, started: float, records: dict[str, Any]) -> None:
    """The named stages' tasks in order (tabpilot.runner.run_stages)."""
    runner.run_stages(names, TASKS, cfg, paths, started, records)


@flow(name="tabpilot-train", log_prints=True)
def train(params: dict[str, Any], workdir: str, started: float | None = None) -> dict[str, Any]:
    """Validate, split, plan, search, ensemble and register; returns each stage's record.

    `params` is the params.yaml mapping (small, so it is a valid flow parameter); `started` is when
    the user's command began (see `budget_start`).
    """
    cfg = parse(params, source="flow parameters")
    return runner.train(cfg, RunPaths(Path(workdir)), budget_start(started), TASKS,
                        submit=lambda task, *args: task.submit(*args))
