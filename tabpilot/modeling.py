"""The model stages: search (algorithm selection and tuning) and ensemble (selection, refit, test).

The budget is wall-clock for the whole run: the search stops early enough to leave the refit and
registration their share, and every trial and refit runs under a deadline.
"""
from __future__ import annotations

import json
import shutil
import time
from collections.abc import Callable, Collection
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pyarrow.parquet as pq

from tabpilot import metafeatures, pipeline_run, plots, portfolio, tracking
from tabpilot.artifacts import RunPaths, load_pickle, read_json, save_pickle, write_json
from tabpilot.config import Config
from tabpilot.ensemble import (
    EnsembleModel,
    FoldBag,
    apply_temperature,
    caruana_select,
    fit_temperature,
    make_stacker,
    share_preprocessors,
    stack_features,
    stacking_oof,
)
from tabpilot.errors import UserError
from tabpilot.evaluate import (
    HOLDOUT_SHARE,
    encode_target,
    load_workload,
    make_folds,
    predict,
    refit,
    scored_rows,
    search_folds,
)
from tabpilot.features import FeaturePlan, describe, feature_space
from tabpilot.io import Schema
from tabpilot.metrics import resolve
from tabpilot.predict_cost import BATCH_ROWS as PREDICT_COST_ROWS
from tabpilot.predict_cost import Candidate, Cost, ensemble_cost, fit_under, fitted_cost, likely_members, served_refit
from tabpilot.preprocessing import PreprocessPlan
from tabpilot.progress import report
from tabpilot.search import SearchResult, TrialRecord, ensemble_candidates, run_search
from tabpilot.search_space import applicable
from tabpilot.workers import open_pool, prestart, run_each

# Seconds kept after the refits for pickling, logging and registering the ensemble, plus the
# saving of its members' fold models at SAVE_BYTES_PER_SECOND (a bag of forests is hundreds of MB),
# and before them for the ensemble's choice (Caruana, the stacking check, the latency limit); the
# refit itself is estimated from the best trials' fit times, within a share of the budget. Through
# the warm server, ensemble and register stages without refits took 1.4-1.7 s in all, and 3 s kept
# after the refits ended runs 1-4 s early (results/overhead_60s_7f41fd6.md).
RESERVE_FIXED, CHOOSE_SECONDS, RESERVE_MAX_SHARE = 1.5, 0.5, 0.25
# Loading the bags, pickling the ensemble and copying it twice (model dir, MLflow) ran at 118-161
# MB/s in a warm process on 2 cores; 50 MB/s ended ames' 60 s run 3.4 s early (results/overhead.md).
SAVE_BYTES_PER_SECOND = 100e6
# The best trials the refit estimate covers: the suite's ensembles had 5-9 members, nearly all among
# these (counting 4 left diamonds_cut at 60 s no time to refit any of its 7 on all rows).
RESERVE_MEMBERS = 8
# Members a latency-limited ensemble is counted with: Caruana under the default limit kept 1-6 on the
# ten suite tables at 60 s (results/overhead_60s_237aca7.md), and each one counted costs its refit.
LIKELY_MEMBERS = 6
# Fit time grows a little faster than the rows (trees deepen, forests grow).
ROWS_EXPONENT = 1.2
# Seconds kept after the refits when, before the plan is known, the ensemble stage decides whether a
# candidate that needs one can be offered (saving, testing and registering a bagged ensemble of
# forests took 7-10 s); once it is known, `_after_refit` estimates them.
REGISTER_RESERVE = 9.0
# Seconds to start a worker pool and load the training split in each worker (spawned, they import
# scikit-learn, XGBoost and the rest: 3-4 s on 2 cores; the search starts the refits' pool this long
# before its end).
POOL_START = 3.0
# The same, for workers started that long before: they only load the training split.
PRESTARTED_POOL = 1.0
# Seconds to compile one fold pipeline for inference and check it: 0.01-0.11 in the runs behind
# results/overhead_60s_d6132d3.md (ames' 80 columns the most).
COMPILE_SECONDS = 0.08
# Test rows the compiled ensemble is checked on (three times: as they are, with holes, with unseen
# levels): enough to reach every branch the encoders have, few enough to cost under a second.
COMPILE_ROWS = 30
# Trials offered to the stacker: enough for diversity, few enough to refit in time.
STACK_MEMBERS = 5
# The stacking check's rows: 10,000 for five binary members; diamonds_cut's five 5-class members
# (25 columns) on 6,069 rows took 6 s of a 60 s budget, so rows x columns is capped too.
STACK_MAX_ROWS, STACK_MAX_CELLS = 10_000, 50_000


def _pool(cfg: Config, paths: RunPaths) -> Any:
    return open_pool(cfg.compute.backend, cfg.search.n_workers, load_workload,
                     (str(paths.root.resolve()), cfg.to_dict()), cfg.compute.dask_address)


def _local(cfg: Config) -> bool:
    return cfg.compute.backend == "process" and not cfg.compute.dask_address


def _reserve(cfg: Config, n_folds: int, paths: RunPaths | None = None, rows: int = 1,
             prestarted: bool = False) -> Any:
    """Seconds the ensemble and register stages will need, estimated from the search so far
    (`prestarted`: the refits' workers start before the search ends)."""
    limit = _limit(cfg)

    def estimate(result: SearchResult) -> float:
        best = result.ranked()[: min(cfg.ensemble.top_k, RESERVE_MEMBERS)]
        served = _likely_served(best, limit)
        if served is None:
            served = {r.trial: _kept(r) for r in best}
            # Below the best few, a member without kept models is offered only if its refit still fits
            # (`_deliverable`): keeping time for it cut hpc's 60 s search to 0.77 of the budget for a
            # forest the ensemble then left out (results/overhead.md).
            best = [r for rank, r in enumerate(best) if r.models_kept or rank < STACK_MEMBERS]
        else:
            best = [r for r in best if r.trial in served]
        members = [(r.fit_time, len(r.fold_scores), served[r.trial]) for r in best]
        wall = _refit_wall(cfg, members, n_folds, PRESTARTED_POOL if prestarted else POOL_START)
        after = _after_refit(cfg, paths, [(r.trial, _kept(r), served[r.trial], r.predict_time) for r in best],
                             n_folds, rows)
        return CHOOSE_SECONDS + after + min(wall, RESERVE_MAX_SHARE * cfg.search.time_budget)
    return estimate


def _kept(record: TrialRecord) -> int:
    """The fold models a trial kept (its bag's size), 0 if none."""
    return len(record.fold_scores) if record.models_kept else 0


def _after_refit(cfg: Config, paths: RunPaths | None, members: list[tuple[int, int, int, float]], n_folds: int,
                 rows: int) -> float:
    """Seconds the ensemble and register stages need once the members are refit, for members given as
    (trial, fold models kept, fold models served (0: a refit), seconds its models spent predicting
    validation rows), best first: the fixed work, saving the fold models served (a refit: one of them),
    predicting the test rows and compiling. The search keeps this plus the refits; the ensemble stage
    stops its refits this long before the end (a fixed 9 s there, when the search kept 5-9 s in all,
    stopped every refit of a member cut to one fold model: docs/startup.md)."""
    saving = 0.0
    for trial, kept, served, _ in members:
        bag = paths.fold_models_of(trial) if paths is not None and kept else None
        if bag is not None and bag.exists():
            saving += bag.stat().st_size * max(served, 1) / kept / SAVE_BYTES_PER_SECOND
    # The ensemble stage predicts with every core, where each worker had one.
    testing = testing_seconds([(seconds, max(served, 1)) for _, _, served, seconds in members[:STACK_MEMBERS]],
                              n_folds, rows, cfg.split.test_size) / max(cfg.search.n_workers, 1)
    compiling = COMPILE_SECONDS * sum(max(served, 1) for _, _, served, _ in members)
    return RESERVE_FIXED + saving + testing + compiling


def _likely_served(best: list[Any], limit: Cost | None) -> dict[int, int] | None:
    """Under a latency limit, the members that fit it among the best trials and the fold models
    each would serve (0: refit as one model: tabpilot.predict_cost.likely_members); None when no
    limit applies (none set, or no trial's cost known, as in `fit_under`)."""
    known = [Candidate.of(r.trial, r.predict_cost, _kept(r)) for r in best if r.predict_cost]
    return likely_members(known, limit, LIKELY_MEMBERS) if limit is not None and known else None


def testing_seconds(members: list[tuple[float, int]], n_folds: int, rows: int, test_size: float) -> float:
    """Seconds to predict the test rows with members given as (seconds their models spent
    predicting validation rows, models that predict the test rows), on a training split of `rows` rows.

    Each k-fold model predicted 1/k of the training rows, and each served model predicts every test
    row; a holdout's model predicted HOLDOUT_SHARE of them. (diamonds_cut at 300 s: 10.5 s on the
    test rows, where 3 s in all were kept.) The permutation importance is not counted: it is drawn
    only if it still fits (scaled by rows, it took hpc's 60 s search from 0.86 to 0.77)."""
    predicted = rows * test_size / (1 - test_size)
    seconds = 0.0
    for predict_time, models in members:
        if n_folds == 1:
            seconds += predict_time * predicted / (HOLDOUT_SHARE * rows)
        else:
            seconds += predict_time * models * predicted / rows
    return seconds


def _refit_wall(cfg: Config, members: list[tuple[float, int, int]], n_folds: int,
                pool_start: float = POOL_START) -> float:
    """Wall seconds of the members' refits (see `refit_seconds`) on the workers, pool starts included."""
    work = refit_seconds(members, n_folds, cfg.split.test_size, cfg.ensemble.refit_full)
    pools = POOL_START * cfg.ensemble.refit_full + pool_start * any(served_refit(f, s) for _, f, s in members)
    return work / max(cfg.search.n_workers, 1) + pools


def refit_seconds(members: list[tuple[float, int, int]], n_folds: int, test_size: float, refit_full: bool) -> float:
    """Worker-seconds to refit members given as (search fit time over all folds, folds fitted, fold
    models served: all it kept, fewer under a latency limit, 0 when it kept none): one model on the
    training split where `served_refit`, and with `refit_full` every member again on train + test rows
    (a k-fold bag served whole as a bag, anything else as one model)."""
    fold_share = (1 - HOLDOUT_SHARE) if n_folds == 1 else (n_folds - 1) / n_folds
    grow = 1 / (1 - test_size)  # all rows against the training split's
    seconds = 0.0
    for fit_time, folds, served in members:
        one_model = fit_time / max(folds, 1)
        if served_refit(folds, served):
            seconds += one_model * (1 / fold_share) ** ROWS_EXPONENT
        if refit_full:
            bag = served == folds and n_folds > 1
            seconds += fit_time * grow ** ROWS_EXPONENT if bag else one_model * (grow / fold_share) ** ROWS_EXPONENT
    return seconds


def search(cfg: Config, paths: RunPaths, started: float | None = None, ensemble_follows: bool = True,
           stop: Callable[[], bool] | None = None, prestart_refits: bool = False) -> dict[str, Any]:
    """Run the search; every trial becomes an MLflow child run of a new pipeline run. Unless
    `ensemble_follows`, the whole budget is the search's (no time kept for the ensemble and register).
    `stop` ends the search early when it turns true (the flow's data validation failed meanwhile).
    With `prestart_refits` (the ensemble stage runs next in this process) the refits' worker processes
    start during the search's last seconds, so their imports are not the refits' time."""
    started = started or time.time()
    end = started + cfg.search.time_budget
    schema = Schema.load(paths.schema)
    pool = _pool(cfg, paths)  # first: the workers start and load the data while the rest is set up
    experiment = cfg.register_.name
    metric = resolve(cfg.search.metric, schema.task)
    best: dict[str, Any] = {}
    children: dict[int, str] = {}  # trial -> its MLflow child run
    # MLflow stays off the search's critical path: one thread does all its logging, in order.
    mlflow_log = ThreadPoolExecutor(1, thread_name_prefix="tabpilot-mlflow")
    parent = mlflow_log.submit(pipeline_run.open_run, cfg, paths, schema, started)
    logged = [parent]

    def log_trial(record: TrialRecord) -> None:
        children[record.trial] = tracking.log_trial(experiment, parent.result(), record.summary())

    def on_trial(record: TrialRecord, result: SearchResult) -> None:
        logged.append(mlflow_log.submit(log_trial, record))
        top = result.ranked()[:1]
        if top:
            best.update(score=top[0].score, family=top[0].family, trial=top[0].trial)
        report("search", f"{len(result.records)} trials", trials=len(result.records), best=best.get("score"),
               best_family=best.get("family"), left=max(0.0, end - reserve(result) - time.time()),
               metric=metric.name)

    try:
        rows, warm, meta = _warm_start(cfg, paths, schema)
        n_folds, repeats = search_folds(cfg, rows)
        logged.append(mlflow_log.submit(lambda: tracking.log(
            parent.result(), metrics={f"meta.{k}": v for k, v in meta.items()},
            params={"search.warm_start_configs": len(warm), "search.folds_used": n_folds,
                    "search.repeats_used": repeats})))
        prestarting = prestart_refits and ensemble_follows and _local(cfg)
        reserve = _reserve(cfg, n_folds, paths, rows, prestarting) if ensemble_follows else (lambda _: 0.0)
        result = run_search(pool, cfg.search, cfg.seed, end, rows, reserve, warm_start=warm,
                            on_trial=on_trial, keep_oof=max(cfg.ensemble.top_k, STACK_MEMBERS),
                            models_dir=paths.fold_models if cfg.ensemble.bagging else None,
                            feature_space=feature_space(FeaturePlan.load(paths.features_plan)),
                            folds=(n_folds, repeats), stop=stop,
                            near_end=(POOL_START, lambda: prestart(cfg.search.n_workers)) if prestarting else None)
    finally:
        pool.close()
        mlflow_log.shutdown(wait=True)
    for future in logged:
        future.result()  # a logging failure surfaces here, once the search is over
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
    ranked = result.ranked()
    if not ranked:
        raise UserError("no trial finished inside the time budget: raise --time-budget")
    _save_search(paths, result, schema)
    counts = {s: sum(r.status == s for r in result.records) for s in ("ok", "pruned", "stopped", "timeout", "failed")}
    tracking.log(parent.result(), tags={"best_family": ranked[0].family},
                 metrics={"search.trials": len(result.records), "search.best_cv_score": ranked[0].score,
                          "search.seconds": time.time() - started, "search.late_repeats": late_repeats})
    return {"trials": len(result.records), **counts, "late_repeats": late_repeats, "best_trial": ranked[0].trial,
            "best_family": ranked[0].family, "best_cv_score": ranked[0].score, "metric": metric.name}


def _warm_start(cfg: Config, paths: RunPaths, schema: Schema) -> tuple[int, list[dict[str, Any]], dict[str, float]]:
    """Training rows, the portfolio's configurations for the tables most like this one, and the
    meta-features that chose them."""
    train = pd.read_parquet(paths.train)
    y = encode_target(train.pop(schema.target), schema)
    meta = metafeatures.compute(train, y, schema.task, PreprocessPlan.load(paths.preprocess_plan))
    families = applicable(cfg.search.families, len(train))
    warm = portfolio.warm_start(meta, schema.task, families) if cfg.search.portfolio else []
    if cfg.search.warm_start:  # given configurations (a retrain's champion members) go first
        given = read_json(Path(cfg.search.warm_start))
        warm = [c for c in given if c.get("family") in families] + [c for c in warm if c not in given]
    return len(train), warm, meta


def _save_search(paths: RunPaths, result: SearchResult, schema: Schema) -> None:
    paths.search_dir.mkdir(parents=True, exist_ok=True)
    write_json(paths.trials, [r.summary() for r in result.records])
    board = pd.DataFrame([{"trial": r.trial, "family": r.family, "cv_score": r.score, "fit_time": r.fit_time,
                           "params": json.dumps(r.params), "features": json.dumps(r.features)}
                          for r in result.ranked()])
    board.to_csv(paths.leaderboard, index=False)
    np.savez_compressed(paths.oof, **{f"trial_{t}": p for t, p in result.oof.items()})


def ensemble(cfg: Config, paths: RunPaths, started: float | None = None) -> dict[str, Any]:
    """Combine the best trials (Caruana selection, or stacking when it wins out of fold), refit, test."""
    end = (started or time.time()) + cfg.search.time_budget
    schema = Schema.load(paths.schema)
    metric = resolve(cfg.search.metric, schema.task)
    records, top, oof, y_train = candidates_out_of_fold(cfg, paths, schema)
    top = _deliverable(cfg, paths, records, top, end)
    weights = caruana_select({t: oof[t] for t in top}, y_train, metric, cfg.ensemble.size)
    limit = _limit(cfg)
    costs = _candidates(cfg, paths, records, oof)
    plan = _choose_combiner(cfg, schema.task, metric, top, oof, y_train, weights, costs, limit)
    if plan["method"] == "stacking" and not _refits_in_time(cfg, paths, records, plan["members"], end):
        # A stacker needs every member: stack the best trials that can be ready in time instead.
        ready = [t for t in top if _refits_in_time(cfg, paths, records, {t: 1.0}, end)]
        plan = _choose_combiner(cfg, schema.task, metric, ready, oof, y_train, weights, costs, limit)
        if plan["method"] == "stacking" and not _refits_in_time(cfg, paths, records, plan["members"], end):
            plan = {**plan, "method": "caruana", "members": weights}
    folds_used: dict[int, int] = {}
    if limit is not None:
        plan, folds_used = _under_limit(cfg, paths, records, plan, weights, oof, y_train, metric, limit)
    # Refits stop in time for what follows them, estimated as the search estimated it.
    rows = pq.read_metadata(paths.train).num_rows
    refit_by = end - _after_refit(cfg, paths, _planned(cfg, paths, records, plan["members"], folds_used),
                                  search_folds(cfg, rows)[0], rows)
    bags = _load_bags(paths, plan["members"], folds_used) if cfg.ensemble.bagging else {}
    # A member cut to one of its fold models is refit on the whole training split instead (one
    # model on all the rows beats one on (k-1)/k of them); the fold model stands in if that misses.
    alone = {t: bags.pop(t) for t in list(bags) if folds_used.get(t) == 1 < len(records[t]["fold_scores"])}
    to_refit = {t: w for t, w in plan["members"].items() if t not in bags}
    report("ensemble", f"{plan['method']}: {len(bags)} bagged members, refitting {len(to_refit)}")
    members = dict(bags)
    if to_refit:
        members |= _refit(cfg, paths, records, to_refit, refit_by, required=not bags and not alone)
    missed = sum(t not in members for t in alone)
    if limit is not None:
        members = _refits_within(members, alone, limit)
    standing_in = sum(members.get(t, alone[t]) is alone[t] for t in alone)
    if standing_in:
        report("ensemble", f"{standing_in} of {len(alone)} members cut to one fold model serve it: {missed} refits "
                           f"missed their time, {standing_in - missed} were over the latency limit")
    members = {t: members.get(t, alone.get(t)) for t in plan["members"] if t in members or t in alone}
    if plan["method"] == "stacking" and set(members) != set(plan["members"]):
        plan = {**plan, "method": "caruana", "members": weights}  # a member missed its refit
    kept = {t: plan["members"][t] for t in members if t in plan["members"]}
    if limit is not None and plan["method"] == "caruana":
        kept = _drop_over_limit(kept, members, limit)
    stacker, temperature, blend = None, 1.0, None
    if plan["method"] == "stacking":
        rows = _stacking_rows(len(y_train), cfg.seed, [oof[t] for t in kept])
        stacker = make_stacker(schema.task, cfg.seed).fit(
            stack_features([oof[t][rows] for t in kept], schema.task), y_train[rows])
        oof_score = plan["score"]
    else:
        blend = sum(w * oof[t] for t, w in kept.items()) / sum(kept.values())
        # Averaged probabilities are under-confident or over-confident; log loss punishes both.
        temperature = fit_temperature(blend, y_train) if metric.name == "log_loss" else 1.0
        oof_score = metric.score(y_train, apply_temperature(blend, temperature) if temperature != 1.0 else blend)
    model = EnsembleModel([members[t] for t in kept], list(kept.values()), schema.task, schema.classes,
                          temperature, stacker).fit()
    if cfg.ensemble.refit_full and _local(cfg):
        # The refit on all rows adopts these workers: their start overlaps the testing, where a pool opened
        # after it made caravan's refits on all rows miss their time (results/suite_60s_7f41fd6_eefcd8e.md).
        prestart(cfg.search.n_workers)
    test = pd.read_parquet(paths.test)
    y_test = encode_target(test.pop(schema.target), schema)
    predicting = time.time()
    test_pred = predict(model, test, schema.task)
    # The permutation importance's shuffled copies cost at most this per row (one call: less);
    # the figure is drawn only if they fit before the register reserve.
    per_row = (time.time() - predicting) / max(len(test), 1)
    test_score = metric.score(y_test, test_pred)
    if cfg.ensemble.refit_full:
        # A member that serves fewer fold models than it kept is refit as one model.
        whole = {t for t in bags if folds_used.get(t, 0) in (0, len(records[t]["fold_scores"]))
                 and isinstance(members[t], FoldBag)}
        refit_model = _refit_on_all_rows(cfg, paths, records, kept, whole, model, refit_by)
        # Refit on more rows, a model may grow (more boosting rounds, deeper trees): the tested one
        # stays when the refit one would break the latency limit.
        if limit is None or fitted_cost(refit_model.members).within(limit) \
                or not fitted_cost(model.members).within(limit):
            model = refit_model
    compiling = time.time()
    compiled = model.compile(test.head(COMPILE_ROWS), cfg.seed) | {"seconds": round(time.time() - compiling, 2)}
    report("ensemble", f"compiled {compiled['compiled']} of {compiled['pipelines']} pipelines for inference "
                       f"in {compiled['seconds']:.1f} s")
    latency = _latency(model, test, schema.task, cfg, cfg.seed)
    measured, estimated = latency["measured"], latency["estimated"]
    report("ensemble", f"predicts one row in {measured['one_row_ms']:.2f} ms, 1,000 rows in "
                       f"{measured['rows_1000_ms']:.1f} ms (estimated {estimated['one_row_ms']:.2f} and "
                       f"{estimated['rows_1000_ms']:.1f})")
    paths.ensemble.parent.mkdir(parents=True, exist_ok=True)
    save_pickle(model, paths.ensemble)
    # The signature's output sample: the test rows' predictions, not a second call (one predict of
    # a bag of 40 fold pipelines costs 1.2 s even on 50 rows).
    tracking.save_model(paths.model_dir, paths.ensemble, paths.contract, test.head(50),
                        model.frame(test.index[:50], test_pred[:50]))
    members_info = [{"trial": t, "family": records[t]["family"], "weight": round(w / sum(kept.values()), 4),
                     "cv_score": records[t]["score"], "bagged": isinstance(members[t], FoldBag)}
                    for t, w in kept.items()]
    result = {"metric": metric.name, "greater_is_better": metric.greater_is_better, "test_score": test_score,
              "method": plan["method"], "ensemble_cv_score": oof_score,
              "caruana_cv_score": plan["caruana_score"], "stacking_cv_score": plan.get("stacking_score"),
              "best_trial_cv_score": records[top[0]]["score"], "candidates": top, "members": members_info,
              "dropped_members": sorted(set(plan["members"]) - set(kept)), "temperature": temperature,
              "bagged_members": sorted(t for t in kept if isinstance(members[t], FoldBag)),
              "refit_on_all_rows": getattr(model, "refit_full_", []),
              "test_rows": len(test), "compiled": compiled, "predict_cost": latency,
              "fold_models_used": {str(t): len(getattr(m, "models", None) or [m]) for t, m in
                                   zip(kept, model.members, strict=True)}}
    write_json(paths.metrics, result)
    chosen = {str(t): describe(m, records[t].get("features")) for t, m in zip(kept, model.members, strict=True)}
    write_json(paths.features_report, chosen)
    write_json(paths.member_configs, [{k: records[t].get(k) for k in ("family", "params", "features")}
                                      for t in sorted(kept, key=lambda t: -kept[t])])
    run_id = read_json(paths.run_info)["run_id"]
    tracking.log(run_id, metrics={"test_score": test_score, f"test_{metric.name}": test_score,
                                  "ensemble_cv_score": oof_score, "ensemble.members": len(kept)},
                 params={"ensemble.method": plan["method"],
                         "ensemble.constructing_members": sum(d["settings"]["construct"] for d in chosen.values()),
                         "ensemble.selecting_members": sum(d["settings"]["keep"] < 1 for d in chosen.values())})
    tracking.log_artifact(run_id, paths.metrics, "reports")
    tracking.log_artifact(run_id, paths.features_report, "reports")
    tracking.log_artifact(run_id, paths.leaderboard, "reports")
    order = sorted(range(len(members_info)), key=lambda i: -members_info[i]["weight"])
    plots.draw_run(paths.plots, list(records.values()), [members_info[i] for i in order],
                   [model.members[i] for i in order], metric, schema.task, schema.classes, y_test, test_pred,
                   model, test if time.time() + per_row * plots.permuted_rows(test) < refit_by else None,
                   cfg.seed)
    tracking.log_artifact(run_id, paths.plots, "reports/plots")
    return {k: v for k, v in result.items() if k != "members"} | {"members": len(kept)}


def candidates_out_of_fold(cfg: Config, paths: RunPaths, schema: Schema
                           ) -> tuple[dict[int, Any], list[int], dict[int, np.ndarray], np.ndarray]:
    """The search's trial records, the ensemble's candidates (best first), and the kept trials'
    out-of-fold predictions with their targets, on the rows that have them."""
    records = {r["trial"]: r for r in read_json(paths.trials)}
    with np.load(paths.oof) as stored:
        oof = {int(k.split("_")[1]): stored[k] for k in stored.files}
    ranked = sorted(oof, key=lambda t: (records[t]["loss"], t))
    top = ensemble_candidates([(t, records[t]["family"], records[t]["loss"]) for t in ranked], cfg.ensemble.top_k)
    y = encode_target(pd.read_parquet(paths.train, columns=[schema.target])[schema.target], schema)
    # The search's folds again: with a holdout only its rows have out-of-fold predictions.
    n_folds, repeats = search_folds(cfg, len(y))
    scored = scored_rows(make_folds(y, schema.task, n_folds, cfg.seed, repeats))
    return records, top, {t: p[scored] for t, p in oof.items()}, y[scored]


def _stacking_rows(n: int, seed: int, predictions: list[np.ndarray]) -> np.ndarray:
    """The rows a stacker learns from: all of them, or a seeded sample on large tables, where a
    linear model over a few dozen columns has converged long before and time is short. Its cost
    grows with rows x columns, so members with many classes' probabilities get fewer rows."""
    columns = sum(p.shape[1] if p.ndim == 2 and p.shape[1] > 2 else 1 for p in predictions)
    limit = min(STACK_MAX_ROWS, max(STACK_MAX_CELLS // max(columns, 1), 1))
    if n <= limit:
        return np.arange(n)
    return np.sort(np.random.default_rng(seed).choice(n, limit, replace=False))


def _choose_combiner(cfg: Config, task: str, metric: Any, top: list[int], oof: dict[int, np.ndarray],
                     y: np.ndarray, weights: dict[int, float], costs: dict[int, Candidate] | None = None,
                     limit: Cost | None = None) -> dict[str, Any]:
    """Caruana's weighted blend, or a stacker over the best trials when its honest out-of-fold score
    beats the blend's (which is optimistic: the weights were chosen on those same predictions). No
    stacker is tried whose members, one model each, would break the latency `limit`: the check took
    3-5 s of diamonds_cut's 60 s for a stacker the limit then refused (results/overhead_60s_eefcd8e.md)."""
    blend = sum(w * oof[t] for t, w in weights.items())
    caruana_score = metric.score(y, blend)
    plan: dict[str, Any] = {"method": "caruana", "members": weights, "caruana_score": caruana_score}
    stack_ids = top[:STACK_MEMBERS]
    if not cfg.ensemble.stacking or len(stack_ids) < 2 or not _stack_fits(stack_ids, costs or {}, limit):
        return plan
    rows = _stacking_rows(len(y), cfg.seed, [oof[t] for t in stack_ids])
    folds = make_folds(y[rows], task, cfg.search.cv_folds if (cfg.search.cv_folds or 0) > 1 else None, cfg.seed + 1)
    stacked = stacking_oof([oof[t][rows] for t in stack_ids], y[rows], task, folds, cfg.seed)
    stacking_score = metric.score(y[rows], stacked)
    plan["stacking_score"] = stacking_score
    if metric.better(stacking_score, metric.score(y[rows], blend[rows])):
        plan.update(method="stacking", members={t: 1.0 for t in stack_ids}, score=stacking_score)
    return plan


def _deliverable(cfg: Config, paths: RunPaths, records: dict[int, Any], top: list[int], end: float) -> list[int]:
    """The candidates that can be members in time. One with kept fold models is ready; one without
    needs a refit first, and is offered only while those refits, and the refit on all rows of the
    kept best, still fit before the register reserve. (diamonds_cut at 60 s: a forest refit for a
    0.04 weight took the 13 s the other 7 members needed for their refit on all rows.)"""
    kept = {t: cfg.ensemble.bagging and paths.fold_models_of(t).exists() for t in top}
    if not any(kept.values()):
        return top  # every member needs its refit: the best one gets it in any case
    best = records[top[0]]
    n_folds = len(best["fold_scores"]) // max(best.get("repeats", 1), 1)
    chosen = [t for t in top if kept[t]][:RESERVE_MEMBERS]
    for t in top:
        if not kept[t]:
            wall = _refit_wall(cfg, [(records[c]["fit_time"], len(records[c]["fold_scores"]),
                                      len(records[c]["fold_scores"]) if kept[c] else 0)
                                     for c in [*chosen, t]], n_folds)
            if time.time() + wall < end - REGISTER_RESERVE:
                chosen.append(t)
    return [t for t in top if kept[t] or t in chosen]


def _refits_in_time(cfg: Config, paths: RunPaths, records: dict[int, Any], members: dict[int, float],
                    end: float) -> bool:
    """Whether the members without kept fold models can be refit before the register reserve."""
    # A fold's fit time, scaled to all the rows (forests grow faster than linearly), plus a pool start.
    cost = [records[t]["fit_time"] / max(len(records[t]["fold_scores"]), 1) * 1.6
            for t in members if not (cfg.ensemble.bagging and paths.fold_models_of(t).exists())]
    needed = max(cost + [sum(cost) / max(cfg.search.n_workers, 1)]) + POOL_START if cost else 0.0
    return time.time() + needed < end - REGISTER_RESERVE


def _planned(cfg: Config, paths: RunPaths, records: dict[int, Any], weights: dict[int, float],
             folds_used: dict[int, int]) -> list[tuple[int, int, int, float]]:
    """The plan's members, heaviest first, as `_after_refit` takes them: (trial, fold models kept,
    fold models served, seconds its models spent predicting validation rows)."""
    members = []
    for t in sorted(weights, key=lambda t: (-weights[t], t)):
        kept = len(records[t]["fold_scores"]) if cfg.ensemble.bagging and paths.fold_models_of(t).exists() else 0
        members.append((t, kept, folds_used.get(t, kept), float(records[t].get("predict_time") or 0.0)))
    return members


def _load_bags(paths: RunPaths, members: dict[int, float], folds_used: dict[int, int]) -> dict[int, FoldBag]:
    """The members whose fold models the search kept, each as a bag of them (of the first
    `folds_used[t]` of them, where the latency limit says so; 0: none, it is refit)."""
    bags = {}
    for t in members:
        if paths.fold_models_of(t).exists() and folds_used.get(t) != 0:
            models = load_pickle(paths.fold_models_of(t))
            bags[t] = FoldBag(models[:folds_used.get(t, len(models))]).fit()
    return bags


def _limit(cfg: Config) -> Cost | None:
    one, batch = cfg.ensemble.max_predict_ms, cfg.ensemble.max_batch_ms
    return None if one is None and batch is None else Cost(one or np.inf, batch or np.inf)


def _candidates(cfg: Config, paths: RunPaths, records: dict[int, Any], oof: dict[int, np.ndarray]
                ) -> dict[int, Candidate]:
    """The held trials whose predict cost is known, as ensemble members (tabpilot.predict_cost)."""
    return {t: Candidate.of(t, r["predict_cost"], len(r["fold_scores"])
                            if cfg.ensemble.bagging and paths.fold_models_of(t).exists() else 0)
            for t, r in records.items() if t in oof and r.get("predict_cost")}


def _stack_fits(members: list[int], candidates: dict[int, Candidate], limit: Cost | None) -> bool:
    """Whether a stacker of `members` can be served under `limit` (one model each; a member of
    unknown cost is given the benefit of the doubt, as `fit_under` gives it)."""
    if limit is None or not set(members) <= set(candidates):
        return True
    return ensemble_cost(candidates, {t: min(candidates[t].folds, 1) for t in members}).within(limit)


def _under_limit(cfg: Config, paths: RunPaths, records: dict[int, Any], plan: dict[str, Any],
                 weights: dict[int, float], oof: dict[int, np.ndarray], y: np.ndarray, metric: Any,
                 limit: Cost) -> tuple[dict[str, Any], dict[int, int]]:
    """The plan, and fold models per member, within the latency limit (tabpilot.predict_cost):
    a stacker is kept if its members fit (with one fold model each, if not with all), otherwise
    Caruana's selection runs again under the limit."""
    candidates = _candidates(cfg, paths, records, oof)
    if plan["method"] == "stacking" and set(plan["members"]) <= set(candidates):
        for folds in ({t: candidates[t].folds for t in plan["members"]},
                      {t: min(candidates[t].folds, 1) for t in plan["members"]}):
            if ensemble_cost(candidates, folds).within(limit):
                return plan, folds
    chosen, folds = fit_under(weights, oof, y, metric, cfg.ensemble.size, candidates, limit)
    if chosen is not weights or plan["method"] == "stacking":
        report("ensemble", f"{len(chosen)} members under the latency limit")
    return {**plan, "method": "caruana", "members": chosen}, folds


def _refits_within(members: dict[int, Any], alone: dict[int, Any], limit: Cost) -> dict[int, Any]:
    """The members within the limit: the refits; else with the refits that grew on more rows
    (boosting rounds, tree depth) given back their fold model, most grown first, while that brings
    the whole within it; else every fold model, as the search chose them. (Refits share one fitted
    preprocessing and fold models another, so a mix can cost more than either.)"""
    members = {t: members.get(t, alone.get(t)) for t in members | alone}
    growth = {t: fitted_cost([members[t]]).batch_ms - fitted_cost([alone[t]]).batch_ms
              for t in alone if members[t] is not alone[t]}
    mixed = dict(members)
    for t in sorted((t for t in growth if growth[t] > 0), key=lambda t: (-growth[t], t)):
        if _within(list(mixed.values()), limit):
            return mixed
        mixed[t] = alone[t]
    return mixed if _within(list(mixed.values()), limit) else members | alone


def _drop_over_limit(kept: dict[int, float], members: dict[int, Any], limit: Cost) -> dict[int, float]:
    """The built members (refits included, whose cost was an estimate from fold models), the
    lightest dropped while they are over the limit and more than one remains."""
    kept = dict(kept)
    while len(kept) > 1 and not _within([members[t] for t in kept], limit):
        del kept[min(kept, key=lambda t: (kept[t], -t))]
    return kept


def _within(members: list[Any], limit: Cost) -> bool:
    share_preprocessors(members)  # equal fitted preprocessing runs once, as in the ensemble
    return fitted_cost(members).within(limit)


def _latency(model: EnsembleModel, test: pd.DataFrame, task: str, cfg: Config, seed: int) -> dict[str, Any]:
    """The model's estimated and measured prediction time: one row alone (best of 20 rows) and
    1,000 test rows drawn with replacement."""
    def timed(rows: pd.DataFrame) -> float:
        started = time.perf_counter()
        predict(model, rows, task)
        return (time.perf_counter() - started) * 1e3

    one = min(timed(test.iloc[[i % len(test)]]) for i in range(20))
    rows = test.sample(PREDICT_COST_ROWS, replace=True, random_state=seed)
    batch = timed(rows)
    if batch < 250:  # the first call pays for warming caches: a second when it is cheap
        batch = min(batch, timed(rows))
    return {"limit": {"one_row_ms": cfg.ensemble.max_predict_ms, "rows_1000_ms": cfg.ensemble.max_batch_ms},
            "estimated": fitted_cost(model.members).rounded(),
            "measured": Cost(one, batch).rounded()}


def _refit_on_all_rows(cfg: Config, paths: RunPaths, records: dict[int, Any], kept: dict[int, float],
                       bagged: set[int], tested: EnsembleModel, deadline: float) -> EnsembleModel:
    """The tested ensemble's members refit on train + test rows (bagged members as a bag again);
    a member whose refit misses the deadline stays as tested.

    The test score stays the one measured before: it estimates this procedure, and the served
    model gains the held-out rows (worth most on small tables).
    """
    report("ensemble", f"refitting {len(kept)} members on all rows")
    full = _refit(cfg, paths, records, kept, deadline, with_test=True, required=False,
                  bagged=bagged)
    if not full:
        return tested
    tested_members = dict(zip(kept, tested.members, strict=True))  # type: ignore[arg-type]
    model = EnsembleModel([full.get(t, tested_members[t]) for t in kept], list(kept.values()), tested.task,
                          tested.classes, tested.temperature, tested.stacker).fit()
    model.refit_full_ = sorted(full)
    return model


def _refit(cfg: Config, paths: RunPaths, records: dict[int, Any], weights: dict[int, float],
           deadline: float, with_test: bool = False, required: bool = True,
           bagged: Collection[int] = ()) -> dict[int, Any]:
    """Refit the chosen trials on the whole training split, heaviest first; drop those that overrun."""
    order = sorted(weights, key=lambda t: (-weights[t], t))
    pool = _pool(cfg, paths)
    fitted: dict[int, Any] = {}

    def job(trial: int) -> tuple[Any, dict[str, Any], float]:
        # The best member always gets its refit, even past the deadline: no model is worse.
        late = required and not fitted and trial == order[0]
        limit = deadline + cfg.search.time_budget if late else deadline
        candidate = {k: records[trial].get(k) for k in ("family", "params", "features")}
        return refit, {"candidate": candidate, "with_test": with_test, "bagged": trial in bagged,
                       "repeats": records[trial].get("repeats", 1)}, limit

    try:
        for outcome in run_each(pool, order, job):
            if outcome.result is not None:
                fitted[outcome.job_id] = outcome.result["model"]
    finally:
        pool.close()
    if not fitted and required:
        raise UserError("no ensemble member could be refit: raise --time-budget")
    return {t: fitted[t] for t in order if t in fitted}
