"""The time model both model stages share: how long the refits, the test predictions, compiling and
registering will take, so the search stops in time for them and the ensemble stage only plans what fits.
"""
from __future__ import annotations

import math
import time
from typing import Any

import numpy as np
import pyarrow.parquet as pq

from tabpilot.core.artifacts import RunPaths
from tabpilot.core.config import Config
from tabpilot.ensemble.latency import Candidate, likely_members, served_refit
from tabpilot.search import fidelity
from tabpilot.search.evaluate import (
    HOLDOUT_SHARE,
    holdout_share,
)
from tabpilot.search.predict_cost import Cost
from tabpilot.search.records import SearchResult, TrialRecord

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
# forests took 7-10 s); once it is known, `after_refit` estimates them.
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


# Trials offered to the stacker: enough for diversity, few enough to refit in time.
STACK_MEMBERS = 5


def ensemble_reserve(cfg: Config, n_folds: int, paths: RunPaths | None = None, rows: int = 1,
             prestarted: bool = False) -> Any:
    """Seconds the ensemble and register stages will need, estimated from the search so far
    (`prestarted`: the refits' workers start before the search ends)."""
    limit = latency_limit(cfg)

    def estimate(result: SearchResult) -> float:
        best = result.ranked()[: min(cfg.ensemble.top_k, RESERVE_MEMBERS)]
        served = likely_served(best, limit)
        if served is None:
            served = {r.trial: kept_models(r) for r in best}
            # Below the best few, a member without kept models is offered only if its refit still fits
            # (`_deliverable`): keeping time for it cut hpc's 60 s search to 0.77 of the budget for a
            # forest the ensemble then left out (results/overhead.md).
            best = [r for rank, r in enumerate(best) if r.models_kept or rank < STACK_MEMBERS]
        else:
            best = [r for r in best if r.trial in served]
        members = [(all_rows_fit(r.fit_time, r.rows, rows), len(r.fold_scores), served[r.trial]) for r in best]
        wall = refit_wall(cfg, members, n_folds, PRESTARTED_POOL if prestarted else POOL_START)
        after = after_refit(cfg, paths, [(r.trial, kept_models(r), served[r.trial], r.predict_time) for r in best],
                             n_folds, rows)
        return CHOOSE_SECONDS + after + min(wall, RESERVE_MAX_SHARE * cfg.search.time_budget)
    return estimate


def all_rows_fit(fit_time: float, fitted: int | None, rows: int) -> float:
    """A trial's fit time as if on all of its holdout's training rows, from a training split of `rows`:
    a trial of a lower rung (tabpilot.search.fidelity) fitted `fitted` of them, and its refit fits all."""
    if not fitted:
        return fit_time
    return fidelity.scaled_seconds(fit_time, fitted, rows - math.ceil(holdout_share(rows) * rows))


def kept_models(record: TrialRecord) -> int:
    """The fold models a trial kept (its bag's size), 0 if none."""
    return len(record.fold_scores) if record.models_kept else 0


def after_refit(cfg: Config, paths: RunPaths | None, members: list[tuple[int, int, int, float]], n_folds: int,
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
                              n_folds, rows, cfg.split.share_of_train(rows)) / max(cfg.search.n_workers, 1)
    compiling = COMPILE_SECONDS * sum(max(served, 1) for _, _, served, _ in members)
    return RESERVE_FIXED + saving + testing + compiling


def likely_served(best: list[Any], limit: Cost | None) -> dict[int, int] | None:
    """Under a latency limit, the members that fit it among the best trials and the fold models
    each would serve (0: refit as one model: tabpilot.search.predict_cost.likely_members); None when no
    limit applies (none set, or no trial's cost known, as in `fit_under`)."""
    known = [Candidate.of(r.trial, r.predict_cost, kept_models(r)) for r in best if r.predict_cost]
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
            seconds += predict_time * predicted / (holdout_share(rows) * rows)
        else:
            seconds += predict_time * models * predicted / rows
    return seconds


def refit_wall(cfg: Config, members: list[tuple[float, int, int]], n_folds: int,
               pool_start: float = POOL_START, all_rows: bool | None = None) -> float:
    """Wall seconds of the members' refits on the workers, pool starts included: the refits on the
    training split, then (`all_rows`, by default `ensemble.refit_full`) those on all rows. Each member
    is one job, so a phase takes its work shared among the workers, or its longest job if longer."""
    all_rows = cfg.ensemble.refit_full if all_rows is None else all_rows
    workers = max(cfg.search.n_workers, 1)
    split = [refit_seconds([m], n_folds, cfg.split.test_size, False) for m in members]
    full = [refit_seconds([m], n_folds, cfg.split.test_size, True) - s for m, s in zip(members, split, strict=True)]
    wall = sum(max([sum(jobs) / workers, *jobs]) for jobs in (split, full if all_rows else []) if jobs)
    return wall + POOL_START * all_rows + pool_start * any(served_refit(f, s) for _, f, s in members)


def refit_seconds(members: list[tuple[float, int, int]], n_folds: int, test_size: float, refit_full: bool) -> float:
    """Worker-seconds to refit members given as (search fit time over all folds, folds fitted, fold
    models served: all it kept, fewer under a latency limit, 0 when it kept none): one model on the
    training split where `served_refit`, and with `refit_full` every member again on train + test rows
    (a k-fold bag served whole as a bag, anything else as one model). Fit time grows a little faster
    than the rows (ROWS_EXPONENT)."""
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


def refits_in_time(cfg: Config, paths: RunPaths, records: dict[int, Any], members: dict[int, float],
                   end: float) -> bool:
    """Whether the members without kept fold models can be refit on the training split before the
    register reserve (`refit_wall`; the refit on all rows comes after the test, under its own deadline)."""
    needed = [records[t] for t in members if not (cfg.ensemble.bagging and paths.fold_models_of(t).exists())]
    if not needed:
        return True
    n_folds = len(needed[0]["fold_scores"]) // max(needed[0].get("repeats", 1), 1)
    rows = pq.read_metadata(paths.train).num_rows if any(r.get("rows") for r in needed) else 0
    wall = refit_wall(cfg, [(all_rows_fit(r["fit_time"], r.get("rows"), rows), len(r["fold_scores"]), 0)
                            for r in needed], n_folds, all_rows=False)
    return time.time() + wall < end - REGISTER_RESERVE


def refit_ends_by(cfg: Config, record: dict[str, Any], rows: int, n_folds: int, deadline: float) -> bool:
    """Whether one trial's refit on the whole training split of `rows` rows, on workers the search
    prestarted, can end by `deadline`: one that cannot is not started (at 1M rows a refit attempt
    that then missed cost 2 s of loading the rows into the workers: docs/scale.md)."""
    member = (all_rows_fit(record["fit_time"], record.get("rows"), rows), len(record["fold_scores"]), 0)
    return time.time() + refit_wall(cfg, [member], n_folds, PRESTARTED_POOL, all_rows=False) < deadline


def latency_limit(cfg: Config) -> Cost | None:
    """The ensemble's limits on prediction latency and model size (None: none)."""
    one, batch, mb = cfg.ensemble.max_predict_ms, cfg.ensemble.max_batch_ms, cfg.ensemble.max_model_mb
    return None if one is None and batch is None and mb is None else Cost(one or np.inf, batch or np.inf, mb or np.inf)
