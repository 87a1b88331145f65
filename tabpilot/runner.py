"""The training pipeline, stage by stage: one runner for every way it is started.

`tabpilot train` runs it as a Prefect flow (flows/training.py hands in each stage as a task), the
Python API (tabpilot.api) in this process with the stage functions themselves; `dvc repro` runs
the same functions one process each. Validation runs beside the search and ensemble (Great
Expectations alone takes seconds to start); a broken contract stops the search and fails the run
before anything is registered.
"""
from __future__ import annotations

import shutil
import time
from collections.abc import Callable, Mapping
from concurrent.futures import ThreadPoolExecutor
from threading import Event
from typing import Any

from tabpilot.core.artifacts import RunPaths
from tabpilot.core.config import Config
from tabpilot.core.errors import TrackingUnavailable
from tabpilot.data import prepare
from tabpilot.registry import model_versions, pipeline_runs, tracking
from tabpilot.training import ensemble_stage, search_stage

Stage = Callable[..., dict[str, Any]]
# The stage functions, in order; the search and ensemble stages also get the budget clock's start.
STAGES: dict[str, Stage] = {"ingest": prepare.ingest, "validate": prepare.validate, "split": prepare.split,
                            "preprocess": prepare.preprocess, "features": prepare.features,
                            "search": search_stage.search, "ensemble": ensemble_stage.ensemble,
                            "register": model_versions.register}
DATA = ("ingest", "validate")
MODEL = ("split", "preprocess", "features", "search", "ensemble", "register")
TIMED = ("search", "ensemble")


def in_thread(stage: Stage, *args: Any) -> Any:
    """Run `stage` in a thread of its own; its future (the runner's default for validation)."""
    executor = ThreadPoolExecutor(1, thread_name_prefix="tabpilot-validate")
    try:
        return executor.submit(stage, *args)
    finally:
        executor.shutdown(wait=False)


def run_stages(names: tuple[str, ...], stages: Mapping[str, Stage], cfg: Config, paths: RunPaths, started: float,
               records: dict[str, Any]) -> None:
    """Run each named stage in order, recording its result and seconds; a failure marks the
    pipeline's MLflow run failed before it propagates."""
    try:
        for name in names:
            began = time.time()
            records[name] = stages[name](cfg, paths, *((started,) if name in TIMED else ()))
            records[name]["seconds"] = round(time.time() - began, 2)
    except BaseException as error:
        _fail(paths, error)
        raise


def _fail(paths: RunPaths, error: BaseException) -> None:
    """Mark the pipeline's MLflow run failed, unless the tracking server is what failed: then the error
    becomes the one line naming the fix (tracking.outage), and nothing more is asked of the server."""
    if isinstance(error, TrackingUnavailable):
        return
    if tracking.unreachable(error):
        raise tracking.outage(paths.root) from error
    pipeline_runs.fail_run(paths, f"{type(error).__name__}: {error}")


def train(cfg: Config, paths: RunPaths, started: float, stages: Mapping[str, Stage] = STAGES,
          submit: Callable[..., Any] = in_thread) -> dict[str, Any]:
    """Ingest, split, plan, search, ensemble and register, validation beside the search; returns
    each stage's record. `started` is when the user's command began (the budget counts from there);
    `submit(stage, cfg, paths)` starts validation and returns its future."""
    if cfg.search.resume:
        search_stage.check_resumable(paths)
    else:  # a previous run's id must not be failed or reused (a resumed run continues it)
        paths.run_info.unlink(missing_ok=True)
    records: dict[str, Any] = {}
    run_stages(DATA[:1], stages, cfg, paths, started, records)
    broken = Event()
    validation = None
    try:
        run_stages(MODEL[:3], stages, cfg, paths, started, records)
        # Started only now: beside the split and plans its thread held the GIL they need; it runs
        # while the main thread waits on the search's workers.
        validation = submit(stages["validate"], cfg, paths)
        validation.add_done_callback(lambda done: broken.set() if _failed(done) else None)
        for name in MODEL[3:5]:
            if broken.is_set():
                break  # the contract's error is raised below
            began = time.time()
            records[name] = stages[name](cfg, paths, started, **({"stop": broken.is_set, "prestart_refits": True}
                                                                 if name == "search" else {}))
            records[name]["seconds"] = round(time.time() - began, 2)
        records["validate"] = validation.result()  # a broken contract raises here, before registering
    except BaseException as error:
        _fail(paths, error)
        if validation is None:
            raise
        failed = _failed(validation)  # waits for it
        if broken.is_set() or failed:
            validation.result()  # the contract's error is the one to report
        raise
    run_stages(MODEL[5:], stages, cfg, paths, started, records)
    shutil.rmtree(paths.journal, ignore_errors=True)  # registered: nothing left to resume
    records["seconds"] = round(time.time() - started, 1)
    return records


def _failed(future: Any) -> bool:
    try:
        future.result()
    except BaseException:
        return True
    return False
