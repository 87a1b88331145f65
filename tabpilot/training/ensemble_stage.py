"""The ensemble stage: Caruana selection or stacking over the best trials, refits, the test score,
compiling for inference and the saved model, within what is left of the budget.
"""
from __future__ import annotations

import time
from collections.abc import Collection
from typing import Any

import numpy as np
import pandas as pd
import pyarrow.parquet as pq

from tabpilot.core import plots
from tabpilot.core.artifacts import RunPaths, load_pickle, read_json, save_pickle, write_json
from tabpilot.core.config import Config
from tabpilot.core.errors import UserError
from tabpilot.core.metrics import resolve
from tabpilot.core.progress import report
from tabpilot.data.features import describe
from tabpilot.data.files import Schema, read_parquet
from tabpilot.ensemble.latency import Candidate, ensemble_cost, fit_under, fitted_cost
from tabpilot.ensemble.model import (
    EnsembleModel,
    apply_temperature,
    caruana_select,
    fit_temperature,
    make_stacker,
    share_preprocessors,
    stack_features,
    stacking_oof,
)
from tabpilot.registry import tracking
from tabpilot.search.estimators import refit_candidate
from tabpilot.search.evaluate import (
    encode_target,
    make_folds,
    predict,
    refit,
    scored_rows,
    search_folds,
)
from tabpilot.search.fold_bag import FoldBag
from tabpilot.search.predict_cost import BATCH_ROWS as PREDICT_COST_ROWS
from tabpilot.search.predict_cost import Cost, size_mb
from tabpilot.search.records import ensemble_candidates
from tabpilot.search.workers import prestart, run_each
from tabpilot.training.budget import (
    REGISTER_RESERVE,
    RESERVE_MEMBERS,
    STACK_MEMBERS,
    after_refit,
    all_rows_fit,
    latency_limit,
    refit_ends_by,
    refit_wall,
    refits_in_time,
)
from tabpilot.training.search_stage import local_workers, open_workers

# Test rows the compiled ensemble is checked on (three times: as they are, with holes, with unseen
# levels): enough to reach every branch the encoders have, few enough to cost under a second.
COMPILE_ROWS = 30


# The stacking check's rows: 10,000 for five binary members; diamonds_cut's five 5-class members
# (25 columns) on 6,069 rows took 6 s of a 60 s budget, so rows x columns is capped too.
STACK_MAX_ROWS, STACK_MAX_CELLS = 10_000, 50_000


def ensemble(cfg: Config, paths: RunPaths, started: float | None = None) -> dict[str, Any]:
    """Combine the best trials (Caruana selection, or stacking when it wins out of fold), refit, test."""
    end = (started or time.time()) + cfg.search.time_budget
    schema = Schema.load(paths.schema)
    metric = resolve(cfg.search.metric, schema.task)
    records, top, oof, y_train = candidates_out_of_fold(cfg, paths, schema)
    top = _deliverable(cfg, paths, records, top, end)
    weights = caruana_select({t: oof[t] for t in top}, y_train, metric, cfg.ensemble.size)
    limit = latency_limit(cfg)
    costs = _candidates(cfg, paths, records, oof)
    plan = _choose_combiner(cfg, schema.task, metric, top, oof, y_train, weights, costs, limit)
    if plan["method"] == "stacking" and not refits_in_time(cfg, paths, records, plan["members"], end):
        # A stacker needs every member: stack the best trials that can be ready in time instead.
        ready = [t for t in top if refits_in_time(cfg, paths, records, {t: 1.0}, end)]
        plan = _choose_combiner(cfg, schema.task, metric, ready, oof, y_train, weights, costs, limit)
        if plan["method"] == "stacking" and not refits_in_time(cfg, paths, records, plan["members"], end):
            plan = {**plan, "method": "caruana", "members": weights}
    folds_used: dict[int, int] = {}
    if limit is not None:
        plan, folds_used = _under_limit(cfg, paths, records, plan, weights, oof, y_train, metric, limit)
    # Refits stop in time for what follows them, estimated as the search estimated it.
    rows = pq.read_metadata(paths.train).num_rows
    refit_by = end - after_refit(cfg, paths, _planned(cfg, paths, records, plan["members"], folds_used),
                                  search_folds(cfg, rows)[0], rows)
    split = {"task": schema.task, "n_folds": search_folds(cfg, rows)[0], "seed": cfg.seed}
    bags = _load_bags(paths, records, plan["members"], folds_used, split) if cfg.ensemble.bagging else {}
    # A member cut to one of its fold models is refit on the whole training split instead (one
    # model on all the rows beats one on (k-1)/k of them); the fold model stands in if that misses.
    # So is a model of a lower rung of rows (tabpilot.search.fidelity), fitted on fewer than all of them.
    alone = {t: bags.pop(t) for t in list(bags)
             if folds_used.get(t) == 1 < len(records[t]["fold_scores"]) or records[t].get("rows")}
    to_refit = _to_refit(cfg, records, plan["members"], bags, alone, rows, refit_by)
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
    if cfg.ensemble.refit_full and local_workers(cfg):
        # The refit on all rows adopts these workers: their start overlaps the testing, where a pool opened
        # after it made caravan's refits on all rows miss their time (results/suite_60s_7f41fd6_eefcd8e.md).
        prestart(cfg.search.n_workers)
    test = read_parquet(paths.test)
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
    if cfg.ensemble.max_model_mb is not None and size_mb(model) > cfg.ensemble.max_model_mb:
        # The compiled trees about double a model's size: past the size limit it predicts uncompiled.
        model.compiled_ = None
        compiled["dropped_over_max_model_mb"] = True
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
    out-of-fold predictions with their targets, on the rows that have them (the search keeps only
    those: tabpilot.search.evaluate.cross_validate)."""
    records = {r["trial"]: r for r in read_json(paths.trials)}
    with np.load(paths.oof) as stored:
        oof = {int(k.split("_")[1]): stored[k] for k in stored.files}
    ranked = sorted(oof, key=lambda t: (records[t]["loss"], t))
    top = ensemble_candidates([(t, records[t]["family"], records[t]["loss"]) for t in ranked], cfg.ensemble.top_k)
    y = encode_target(pd.read_parquet(paths.train, columns=[schema.target])[schema.target], schema)
    # The search's folds again: with a holdout only its rows have out-of-fold predictions.
    n_folds, repeats = search_folds(cfg, len(y))
    scored = scored_rows(make_folds(y, schema.task, n_folds, cfg.seed, repeats))
    return records, top, {t: p if len(p) == len(scored) else p[scored] for t, p in oof.items()}, y[scored]


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
    sampled = any(records[t].get("rows") for t in top)  # a lower rung's trial: its refit is counted at all rows
    rows = pq.read_metadata(paths.train).num_rows if sampled else 0
    for t in top:
        if not kept[t]:
            wall = refit_wall(cfg, [(all_rows_fit(records[c]["fit_time"], records[c].get("rows"), rows),
                                     len(records[c]["fold_scores"]), len(records[c]["fold_scores"]) if kept[c] else 0)
                                    for c in [*chosen, t]], n_folds)
            if time.time() + wall < end - REGISTER_RESERVE:
                chosen.append(t)
    return [t for t in top if kept[t] or t in chosen]


def _to_refit(cfg: Config, records: dict[int, Any], weights: dict[int, float], bags: Collection[int],
              alone: Collection[int], rows: int, deadline: float) -> dict[int, float]:
    """The members to refit: those with no bag, and those cut to one fold model (or of a lower rung)
    whose refit can end by `deadline`; a refit that cannot is not started, the fold model serves."""
    n_folds = search_folds(cfg, rows)[0]
    return {t: w for t, w in weights.items() if t not in bags
            and (t not in alone or refit_ends_by(cfg, records[t], rows, n_folds, deadline))}


def _planned(cfg: Config, paths: RunPaths, records: dict[int, Any], weights: dict[int, float],
             folds_used: dict[int, int]) -> list[tuple[int, int, int, float]]:
    """The plan's members, heaviest first, as `after_refit` takes them: (trial, fold models kept,
    fold models served, seconds its models spent predicting validation rows)."""
    members = []
    for t in sorted(weights, key=lambda t: (-weights[t], t)):
        kept = len(records[t]["fold_scores"]) if cfg.ensemble.bagging and paths.fold_models_of(t).exists() else 0
        members.append((t, kept, folds_used.get(t, kept), float(records[t].get("predict_time") or 0.0)))
    return members


def _load_bags(paths: RunPaths, records: dict[int, Any], members: dict[int, float], folds_used: dict[int, int],
               split: dict[str, Any]) -> dict[int, FoldBag]:
    """The members whose fold models the search kept, each as a bag of them (of the first
    `folds_used[t]` of them, where the latency limit says so; 0: none, it is refit).

    `split` ({"task", "n_folds", "seed"}) is recorded with each bag as the k-folds its models came
    from: the search's (its repeats on one seed), then each late repeat r on seed + r (tabpilot.search.loop)."""
    bags = {}
    for t in members:
        if paths.fold_models_of(t).exists() and folds_used.get(t) != 0:
            models = load_pickle(paths.fold_models_of(t))
            repeats, late = records[t].get("repeats", 1), records[t].get("late", 0)
            first = repeats - late
            groups = [[split["seed"], first]] + [[split["seed"] + r, 1] for r in range(first, repeats)]
            recorded = {"task": split["task"], "n_folds": split["n_folds"], "groups": groups}
            bags[t] = FoldBag(models[:folds_used.get(t, len(models))], recorded).fit()
    return bags


def _candidates(cfg: Config, paths: RunPaths, records: dict[int, Any], oof: dict[int, np.ndarray]
                ) -> dict[int, Candidate]:
    """The held trials whose predict cost is known, as ensemble members (tabpilot.search.predict_cost)."""
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
    """The plan, and fold models per member, within the latency limit (tabpilot.search.predict_cost):
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
    return {"limit": {"one_row_ms": cfg.ensemble.max_predict_ms, "rows_1000_ms": cfg.ensemble.max_batch_ms,
                      "mb": cfg.ensemble.max_model_mb},
            "estimated": fitted_cost(model.members).rounded(),
            "measured": Cost(one, batch, size_mb(model)).rounded()}


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
    pool = open_workers(cfg, paths)
    fitted: dict[int, Any] = {}

    def job(trial: int) -> tuple[Any, dict[str, Any], float]:
        # The best member always gets its refit, even past the deadline: no model is worse.
        late = required and not fitted and trial == order[0]
        limit = deadline + cfg.search.time_budget if late else deadline
        candidate = refit_candidate(records[trial])
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
