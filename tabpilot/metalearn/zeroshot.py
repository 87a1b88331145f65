"""The zero-shot portfolio: configurations that, tried first on any new table, do well across the
meta-learning tables together (the greedy portfolio of auto-sklearn 2.0 and of AutoGluon's TabRepo).

Each candidate (the best configurations of each table's own search, and the family defaults) is
cross-validated on every table of its kind of task. A table's losses are rescaled so that its best
candidate scores 0 and its median 1. The greedy then adds one configuration at a time: the one that
most lowers the mean, over tables, of the best rescaled loss so far. A configuration that won on one
table only (the nearest-neighbour warm start's picks) has to earn its place on the others too.

The search runs these first, before the nearest tables' picks and the family defaults: on a large
table a 60 s search may get no further (diamonds_cut: 16 trials), so the list must stand on its own
rather than count on the defaults running after it.
"""
from __future__ import annotations

import json
import time
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow.parquet as pq

from tabpilot.core.artifacts import RunPaths
from tabpilot.core.config import Config
from tabpilot.core.errors import UserError
from tabpilot.core.progress import report
from tabpilot.search.evaluate import cross_validate, load_workload
from tabpilot.search.spaces import DEFAULTS, EXTRA_DEFAULTS, applicable, clip_to_space
from tabpilot.search.workers import open_pool, run_each

# One candidate on one table; slower counts as that table's worst (a 60 s search has no time for it).
EVAL_SECONDS = 20.0
# Configurations chosen. With each meta-learning table held out of the choice in turn, 12 (then the
# nearest tables' picks, then the defaults) reach a mean rescaled loss of 0.058 after 18 trials where
# 6 reached 0.084 (regression: 0.054 and 0.078); `benchmarks/results/warm_start_queue.md`.
SIZE = 12


def family_defaults() -> list[dict[str, Any]]:
    return [{"family": f, "params": p} for f, params in DEFAULTS.items() for p in [params, *EXTRA_DEFAULTS.get(f, [])]]


def rescaled(losses: np.ndarray) -> np.ndarray:
    """Per table (row): 0 for its best candidate, 1 for its median, capped at 1; a failure (NaN) is 1."""
    out = np.ones_like(losses, dtype=float)
    for i, row in enumerate(losses):
        ok = ~np.isnan(row)
        if not ok.any():
            continue
        best, median = row[ok].min(), np.median(row[ok])
        span = median - best
        out[i, ok] = np.clip((row[ok] - best) / span, 0.0, 1.0) if span > 0 else np.where(row[ok] > best, 1.0, 0.0)
    return out


def greedy(errors: np.ndarray, start: list[int], size: int) -> list[int]:
    """Up to `size` columns to add to `start`: each the one that most lowers the mean over rows of the
    row-wise minimum; stops early when no column lowers it."""
    best = errors[:, start].min(axis=1) if start else np.ones(len(errors))
    added: list[int] = []
    for _ in range(size):
        gains = [np.minimum(best, errors[:, j]).mean() for j in range(errors.shape[1])]
        j = int(np.argmin(gains))  # ties: the lowest index, so the result is deterministic
        if gains[j] >= best.mean() - 1e-12:
            break
        best, added = np.minimum(best, errors[:, j]), [*added, j]
    return added


def cross_evaluate(cfg: Config, paths: RunPaths, candidates: list[dict[str, Any]]) -> np.ndarray:
    """Every candidate's cross-validated loss on one prepared table (NaN: failed, too slow or not
    applicable), with the search's own folds and worker pool."""
    rows = pq.read_metadata(paths.train).num_rows
    families = applicable(cfg.search.families, rows, cfg.search.families_from_rows)
    losses = np.full(len(candidates), np.nan)
    pending = [i for i, c in enumerate(candidates) if c["family"] in families]
    pool = open_pool(cfg.compute.backend, cfg.search.n_workers, load_workload,
                     (str(Path(paths.root).resolve()), cfg.to_dict()), cfg.compute.dask_address)

    def job(i: int) -> tuple[Any, dict[str, Any], float]:
        candidate = {"family": candidates[i]["family"],
                     "params": clip_to_space(candidates[i]["family"], candidates[i]["params"], rows)}
        deadline = time.time() + EVAL_SECONDS
        return cross_validate, {"candidate": candidate, "deadline": deadline}, deadline

    try:
        for outcome in run_each(pool, pending, job):
            if outcome.result is not None and outcome.result.get("status") == "ok":
                losses[outcome.job_id] = outcome.result["loss"]
    finally:
        pool.close()
    return losses


def held_out(losses: np.ndarray, origins: list[set[int]], size: int = SIZE) -> np.ndarray:
    """Each table's error under a portfolio chosen without it: the greedy over the other tables,
    among the candidates that exist without it (the defaults, and winners of other tables' searches).
    The in-sample error flatters the portfolio, since every table's own winners are candidates."""
    out = np.ones(len(losses))
    for i in range(len(losses)):
        others = [r for r in range(len(losses)) if r != i]
        allowed = [j for j, tables in enumerate(origins) if not tables or tables - {i}]
        if not others:  # a lone table: nothing to choose from without it
            continue
        chosen = [allowed[k] for k in greedy(rescaled(losses[np.ix_(others, allowed)]), [], size)]
        out[i] = rescaled(losses[i:i + 1])[0, chosen].min() if chosen else 1.0
    return out


def candidates_of(winners: list[list[dict[str, Any]]],
                  per_table: int = 2) -> tuple[list[dict[str, Any]], list[set[int]]]:
    """The candidates (the family defaults, then each table's first `per_table` winners, without
    repeats) and, for each, the tables whose searches found it (none for a default)."""
    candidates = family_defaults()
    origins: list[set[int]] = [set() for _ in candidates]
    for t, configs in enumerate(winners):
        for c in configs[:per_table]:
            if c not in candidates:
                candidates.append(c)
                origins.append(set())
            origins[candidates.index(c)].add(t)
    return candidates, origins


def _key(config: dict[str, Any]) -> str:
    return json.dumps(config, sort_keys=True)


def stored_cells(stored: dict[str, Any] | None) -> dict[tuple[str, str], float]:
    """An earlier build's cross-validated losses by (table, candidate), NaN (a failure) included, so
    that a rebuild with new candidates or tables cross-validates only what it lacks."""
    if not stored:
        return {}
    if "candidate_configs" not in stored:
        raise UserError("the stored losses do not name their candidates (made by an older tabpilot): "
                        "run without --reuse-losses")
    keys = [_key(c) for c in stored["candidate_configs"]]
    return {(dataset, key): np.nan if loss is None else float(loss)
            for dataset, row in zip(stored["datasets"], stored["losses"], strict=True)
            for key, loss in zip(keys, row, strict=True)}


def build(tables: list[tuple[Config, RunPaths, list[dict[str, Any]]]], per_table: int = 2,
          stored: dict[str, Any] | None = None) -> dict[str, Any]:
    """The portfolio for one kind of task from its prepared tables, each with its own search's best
    configurations: the chosen configurations, the mean rescaled loss with them (in sample and with
    each table held out of the choice) and with the family defaults, and the loss matrix itself.
    `stored`: an earlier build's output, whose losses are reused for the (table, candidate) pairs it has."""
    candidates, origins = candidates_of([configs for _, _, configs in tables], per_table)
    cells, keys = stored_cells(stored), [_key(c) for c in candidates]
    rows = []
    for cfg, paths, _ in tables:
        row = np.array([cells.get((cfg.data.path, key), np.inf) for key in keys])  # inf: not yet known
        todo = [j for j in range(len(candidates)) if row[j] == np.inf]
        if todo:
            # Folds of another seed than the searches': a table's own winners were chosen on that seed's folds.
            row[todo] = cross_evaluate(cfg.with_overrides({"seed": cfg.seed + 1}), paths, [candidates[j] for j in todo])
            report("meta-learn", f"{cfg.data.path}: {int(np.isfinite(row[todo]).sum())} of {len(todo)} "
                                 f"candidates cross-validated in time ({len(candidates) - len(todo)} reused)")
        rows.append(row)
    losses = np.vstack(rows) if rows else np.empty((0, len(candidates)))
    errors = rescaled(losses)
    chosen = greedy(errors, [], SIZE)
    defaults = list(range(len(family_defaults())))
    return {"configs": [candidates[j] for j in chosen], "candidates": len(candidates), "tables": len(tables),
            "error": float(errors[:, chosen].min(axis=1).mean()),
            "held_out_error": float(held_out(losses, origins).mean()),
            "defaults_error": float(errors[:, defaults].min(axis=1).mean()),
            # Rows: tables in list order; columns: candidate_configs (the family defaults, then each table's
            # new winners in table order). Kept so a rebuild need not repeat the hour of cross-validation.
            "datasets": [cfg.data.path for cfg, _, _ in tables],
            "candidate_configs": candidates,
            "losses": [[None if np.isnan(v) else float(v) for v in row] for row in losses]}
