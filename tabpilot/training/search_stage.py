"""The search stage: algorithm selection and tuning, every trial an MLflow child run of the pipeline run.

The budget is wall-clock for the whole run: the search stops early enough to leave the ensemble and
registration their share (training/budget.py), and every trial runs under a deadline.
"""
from __future__ import annotations

import json
import shutil
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from tabpilot.core import plots
from tabpilot.core.artifacts import RunPaths, read_json, write_json
from tabpilot.core.config import Config
from tabpilot.core.errors import UserError
from tabpilot.core.metrics import resolve
from tabpilot.core.progress import report
from tabpilot.data.features import FeaturePlan, feature_space
from tabpilot.data.files import Schema
from tabpilot.data.preprocessing import PreprocessPlan
from tabpilot.registry import pipeline_runs, tracking
from tabpilot.search import metafeatures, pareto, portfolio
from tabpilot.search.evaluate import (
    encode_target,
    load_workload,
    search_folds,
    workload_files,
)
from tabpilot.search.journal import Journal, Resumed, fingerprint
from tabpilot.search.loop import run_search
from tabpilot.search.records import SearchResult, TrialRecord
from tabpilot.search.spaces import applicable
from tabpilot.search.workers import open_pool, prestart
from tabpilot.training.budget import POOL_START, STACK_MEMBERS, ensemble_reserve, latency_limit
from tabpilot.training.log_thread import LogThread


def open_workers(cfg: Config, paths: RunPaths) -> Any:
    """The trials' workers; a cluster at `compute.dask_address` gets the run's data shipped (its
    machines need not share this disk)."""
    address = cfg.compute.dask_address
    return open_pool(cfg.compute.backend, cfg.search.n_workers, load_workload,
                     (str(paths.root.resolve()), cfg.to_dict()), address, workload_files(paths) if address else None)


def local_workers(cfg: Config) -> bool:
    return cfg.compute.backend == "process" and not cfg.compute.dask_address


def search(cfg: Config, paths: RunPaths, started: float | None = None, ensemble_follows: bool = True,
           stop: Callable[[], bool] | None = None, prestart_refits: bool = False) -> dict[str, Any]:
    """Run the search; every trial becomes an MLflow child run of a new pipeline run. Unless
    `ensemble_follows`, the whole budget is the search's (no time kept for the ensemble and register).
    `stop` ends the search early when it turns true (the flow's data validation failed meanwhile).
    With `prestart_refits` (the ensemble stage runs next in this process) the refits' worker processes
    start during the search's last seconds, so their imports are not the refits' time.
    With `search.resume` the search continues the one journaled in this run's folder (see `_journal`)."""
    started = started or time.time()
    end = started + cfg.search.time_budget
    schema = Schema.load(paths.schema)
    journal = _journal(cfg, paths, schema)
    pool = open_workers(cfg, paths)  # first: the workers start and load the data while the rest is set up
    experiment = cfg.register_.name
    metric = resolve(cfg.search.metric, schema.task)
    best: dict[str, Any] = {}
    children: dict[int, str] = {}  # trial -> its MLflow child run
    mlflow_log = LogThread(paths.root)
    parent = mlflow_log.submit(_pipeline_run, cfg, paths, schema, started, children)

    def log_trial(record: TrialRecord) -> None:
        if record.trial not in children:  # a resumed run's trials were logged before the kill
            children[record.trial] = tracking.log_trial(experiment, parent.result(), record.summary())

    def on_trial(record: TrialRecord, result: SearchResult) -> None:
        mlflow_log.submit(log_trial, record)
        top = result.ranked()[:1]
        if top:
            best.update(score=top[0].score, family=top[0].family, trial=top[0].trial)
        report("search", f"{len(result.records)} trials", trials=len(result.records), best=best.get("score"),
               best_family=best.get("family"), left=max(0.0, end - kept_back(result) - time.time()),
               metric=metric.name)

    try:
        rows, given, warm, meta = _warm_start(cfg, paths, schema)
        n_folds, repeats = search_folds(cfg, rows)
        mlflow_log.submit(lambda: tracking.log(
            parent.result(), metrics={f"meta.{k}": v for k, v in meta.items()},
            params={"search.warm_start_configs": len(given) + len(warm), "search.folds_used": n_folds,
                    "search.repeats_used": repeats}))
        prestarting = prestart_refits and ensemble_follows and local_workers(cfg)
        kept_back = ensemble_reserve(cfg, n_folds, paths, rows, prestarting) if ensemble_follows else (lambda _: 0.0)
        result = run_search(pool, cfg.search, cfg.seed, end, rows, kept_back, warm_start=warm, given=given,
                            on_trial=on_trial, keep_oof=max(cfg.ensemble.top_k, STACK_MEMBERS),
                            models_dir=paths.fold_models if cfg.ensemble.bagging else None,
                            feature_space=feature_space(FeaturePlan.load(paths.features_plan)),
                            folds=(n_folds, repeats),
                            stop=lambda: mlflow_log.down or (stop is not None and stop()),
                            near_end=(POOL_START, lambda: prestart(cfg.search.n_workers)) if prestarting else None,
                            limit=latency_limit(cfg) if cfg.search.objective == "pareto" else None,
                            journal=journal)
    finally:
        pool.close()
        mlflow_log.close()
    mlflow_log.finish()
    if stop is not None and stop():  # nothing of a search on data that broke its contract is kept
        shutil.rmtree(paths.search_dir, ignore_errors=True)
        return {"trials": len(result.records), "stopped_early": True}
    late_repeats = sum(r.repeats - repeats for r in result.records)
    for record in result.records:  # a late-repeated trial's score as of its last repeat, and its new folds
        if record.repeats > repeats and record.trial in children:
            first = n_folds * repeats  # the folds its child run logged when it finished
            new_folds = {f"fold_{i}_score": s for i, s in enumerate(record.fold_scores) if i >= first}
            tracking.log(children[record.trial], metrics={"cv_score": record.score, "repeats": record.repeats},
                         step=record.repeats)
            tracking.log(children[record.trial], metrics=new_folds)
        if record.rung and record.trial in children:  # moved up rungs of rows: its score on the last
            tracking.log(children[record.trial], metrics={"cv_score": record.score, "rung": record.rung,
                                                          **({"rows": record.rows} if record.rows else {})},
                         step=record.rung)
    ranked = result.ranked()
    if not ranked:
        raise UserError("no trial finished inside the time budget: raise --time-budget")
    _save_search(paths, result, schema)
    on_front = _pareto(cfg, paths, result, metric, parent.result(), children)
    counts = {s: sum(r.status == s for r in result.records) for s in ("ok", "pruned", "stopped", "timeout", "failed")}
    tracking.log(parent.result(), tags={"best_family": ranked[0].family},
                 metrics={"search.trials": len(result.records), "search.best_cv_score": ranked[0].score,
                          "search.seconds": time.time() - started, "search.late_repeats": late_repeats})
    return {"trials": len(result.records), **counts, "late_repeats": late_repeats, "best_trial": ranked[0].trial,
            "best_family": ranked[0].family, "best_cv_score": ranked[0].score, "metric": metric.name,
            **({"pareto_front": on_front} if on_front is not None else {})}


def _journal(cfg: Config, paths: RunPaths, schema: Schema) -> tuple[Journal, Resumed]:
    """The search's journal (every trial as sent and as finished, tabpilot.search.journal), and, with
    `search.resume`, the trials of the search it continues; else an earlier search's journal goes."""
    journal = Journal(paths.journal)
    # What a trial's outcome depends on: these settings, the data and the plans made from them.
    settings = {"seed": cfg.seed, "search": cfg.search.model_dump(mode="json"),
                "preprocess": cfg.preprocess.model_dump(mode="json"), "split": cfg.split.model_dump(mode="json"),
                "kept": [cfg.ensemble.bagging, cfg.ensemble.top_k]}
    plans = [schema.fingerprint, paths.preprocess_plan.read_text(), paths.features_plan.read_text()]
    mark = fingerprint(settings, json.dumps(plans))
    if cfg.search.resume:
        return journal, journal.resume(mark, str(paths.root))
    journal.start(mark)
    return journal, Resumed()


def check_resumable(paths: RunPaths) -> None:
    """Before anything runs: `--resume` needs a search to continue, one whose run did not register."""
    if paths.registration.exists() and paths.run_info.exists() and \
            read_json(paths.registration)["run_id"] == read_json(paths.run_info)["run_id"]:
        raise UserError(f"--resume: the run in {paths.root} finished and registered its model: nothing to "
                        "resume; run without --resume to train again")
    Journal(paths.journal).check(str(paths.root))


def _pipeline_run(cfg: Config, paths: RunPaths, schema: Schema, started: float, children: dict[int, str]) -> str:
    """The pipeline's MLflow run: a new one, or with `search.resume` the killed run's, whose logged trials
    join `children`."""
    if not cfg.search.resume:
        return pipeline_runs.open_run(cfg, paths, schema, started)
    run_id, logged = pipeline_runs.reopen_run(cfg, paths, schema, started)
    children.update(logged)
    return run_id


def _pareto(cfg: Config, paths: RunPaths, result: SearchResult, metric: Any, run_id: str,
            children: dict[int, str]) -> list[dict[str, Any]] | None:
    """With `search.objective: pareto`, the front of score, latency and size: written to
    reports/pareto.json and plots/pareto.png, logged to the pipeline run, its trials tagged."""
    if cfg.search.objective != "pareto":
        return None
    records = [r.summary() for r in result.records]
    on_front = pareto.front(records)
    write_json(paths.pareto, on_front)
    plots.pareto(records, on_front, metric.name, paths.plots / "pareto.png")
    tracking.log_artifact(run_id, paths.pareto, "reports")
    tracking.log(run_id, metrics={"search.pareto_front_size": len(on_front)})
    for point in on_front:
        if point["trial"] in children:
            tracking.log(children[point["trial"]], tags={"pareto_front": "true"})
    return on_front


def _warm_start(cfg: Config, paths: RunPaths, schema: Schema
                ) -> tuple[int, list[dict[str, Any]], list[dict[str, Any]], dict[str, float]]:
    """Training rows, the configurations given to try first (`search.warm_start`), the portfolio's
    for the tables most like this one, and the meta-features that chose them."""
    y = encode_target(pd.read_parquet(paths.train, columns=[schema.target])[schema.target], schema)
    meta = metafeatures.of_file(paths.train, schema.target, y, schema.task, PreprocessPlan.load(paths.preprocess_plan))
    families = applicable(cfg.search.families, len(y), cfg.search.families_from_rows)
    warm = portfolio.warm_start(meta, schema.task, families) if cfg.search.portfolio else []
    given: list[dict[str, Any]] = []
    if cfg.search.warm_start:  # given configurations (a retrain's champion members) go first
        given = [c for c in read_json(Path(cfg.search.warm_start)) if c.get("family") in families]
        warm = [c for c in warm if c not in given]
    return len(y), given, warm, meta


def _save_search(paths: RunPaths, result: SearchResult, schema: Schema) -> None:
    paths.search_dir.mkdir(parents=True, exist_ok=True)
    write_json(paths.trials, [r.summary() for r in result.records])
    board = pd.DataFrame([{"trial": r.trial, "family": r.family, "cv_score": r.score, "fit_time": r.fit_time,
                           "params": json.dumps(r.params), "features": json.dumps(r.features)}
                          for r in result.ranked()])
    board.to_csv(paths.leaderboard, index=False)
    # Uncompressed: compressing a 1M-row search's 13 MB took 0.7 s after its deadline, for 4 MB saved.
    np.savez(paths.oof, **{f"trial_{t}": p for t, p in result.oof.items()})
