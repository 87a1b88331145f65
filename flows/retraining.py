"""The retraining flow: new data against the champion, then a warm-started training run and the gate.

new data (a path or a glob) -> the champion's contract, profile and configurations -> ingest ->
validate against that contract (an error stops here) -> drift report (PSI per feature and of the
target) -> split, plan, search warm-started from the champion's members, ensemble -> register
(the gate scores candidate and champion on the same held-out split) -> a summary (JSON + MLflow).
`tabpilot schedule` serves this flow as a Prefect deployment on a cron schedule.
"""
from __future__ import annotations

import time
from pathlib import Path
from typing import Any

from prefect import flow

from flows.training import budget_start, run_stages
from tabpilot import runner
from tabpilot.core.artifacts import RunPaths
from tabpilot.core.config import parse
from tabpilot.core.errors import UserError
from tabpilot.registry import pipeline_runs
from tabpilot.registry.retraining import retrain_config
from tasks.stages import check_drift, fetch_champion, summarise_retrain


@flow(name="tabpilot-retrain", log_prints=True)
def retrain(params: dict[str, Any], workdir: str, started: float | None = None) -> dict[str, Any]:
    """Retrain the champion of `register.name` on `data.path`; returns each stage's record and the
    summary. With `drift.retrain_on_drift_only` and no drifted feature it stops after the report."""
    cfg = parse(params, source="flow parameters")
    paths = RunPaths(Path(workdir))
    started = budget_start(started)
    paths.run_info.unlink(missing_ok=True)
    records: dict[str, Any] = {"champion": fetch_champion(cfg, paths)}
    cfg = retrain_config(cfg, paths)
    run_stages(runner.DATA, cfg, paths, started, records)
    try:
        records["drift"] = check_drift(cfg, paths)
    except BaseException as error:
        pipeline_runs.fail_run(paths, f"{type(error).__name__}: {error}")
        raise
    if records["drift"]["retrain"]:
        run_stages(runner.MODEL, cfg, paths, started, records)
    records["summary"] = summarise_retrain(cfg, paths, records)
    records["seconds"] = round(time.time() - started, 1)
    return records


def check_cron(cron: str) -> None:
    """A UserError unless `cron` is a five-field cron expression Prefect accepts."""
    from prefect.client.schemas.schedules import CronSchedule
    from pydantic import ValidationError

    try:
        CronSchedule(cron=cron)
    except ValidationError:
        raise UserError(f"'{cron}' is not a cron expression: use five fields, e.g. \"0 3 * * *\"") from None


def serve_retraining(deployment: str, cron: str, params: dict[str, Any], workdir: str) -> None:
    """Register `retrain` as a deployment with that cron schedule and run its scheduled and
    triggered runs from this process until it is stopped."""
    retrain.serve(name=deployment, cron=cron, parameters={"params": params, "workdir": workdir},
                  print_starting_message=False)
