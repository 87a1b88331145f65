"""What a fitted pipeline costs to predict, estimated from its models' structure (which members fit a
latency limit: tabpilot.ensemble.latency).

Estimated, not timed: the same seed, data and trial count must give the same model on a busy
machine as on a quiet one. The constants are milliseconds of the compiled path (tabpilot.ensemble.compiled)
on one core of the 2-core machines here, fitted to the ~400 fold models of the ten public-suite
tables' 60 s ensembles at 59e6aea; each ensemble's estimate stands beside its measured time in
benchmarks/results/latency_tradeoff_60s.md.
"""
from __future__ import annotations

import math
from dataclasses import astuple, dataclass
from typing import Any

import numpy as np

BATCH_ROWS = 1000  # `Cost.batch_ms` is for this many rows at once
# Per tree and level of its depth, milliseconds per 1,000 rows (scikit-learn's forests walk deep
# trees of doubles; XGBoost's predictor is the fastest of the three).
TREE_LEVEL_MS = {"forest": 0.0135, "hgb": 0.0080, "xgboost": 0.0030,
                 # From one table only (Chile's 3-class models, 1,000 rows: a 834-tree LightGBM 53 ms
                 # through its booster, a 300 x depth-6 CatBoost 1.5 ms); no suite ensemble has had them yet.
                 "lightgbm": 0.010, "catboost": 0.0010}
CATBOOST_ONE_ROW_MS = 0.3  # its own predict on one row, the wrapper's integer codes included (0.17-0.38)
TREE_ONE_ROW_MS = (0.05, 0.00003)  # a call, and per tree level, for one row through Treelite
KERNEL_MS = 2e-6  # per stored row x column x predicted row: SVM support vectors, KNN's fitted rows
OTHER_MS = (0.2, 20.0)  # a model of a kind not known here: one row, 1,000 rows
PREPROCESS_MS = ((0.05, 0.01), (0.3, 0.12))  # one row, 1,000 rows: fixed, and per output column


@dataclass(frozen=True)
class Cost:
    one_ms: float  # one row alone
    batch_ms: float  # BATCH_ROWS rows together
    mb: float = 0.0  # pickled size (measured, not estimated); 0 where not known (trials before 0.3.1)

    def __add__(self, other: Cost) -> Cost:
        return Cost(self.one_ms + other.one_ms, self.batch_ms + other.batch_ms, self.mb + other.mb)

    def __mul__(self, k: float) -> Cost:
        return Cost(self.one_ms * k, self.batch_ms * k, self.mb * k)

    def within(self, limit: Cost) -> bool:
        return (self.one_ms <= limit.one_ms + 1e-9 and self.batch_ms <= limit.batch_ms + 1e-9
                and self.mb <= limit.mb + 1e-9)

    def rounded(self) -> dict[str, float]:
        return {"one_row_ms": round(self.one_ms, 3), f"rows_{BATCH_ROWS}_ms": round(self.batch_ms, 2),
                "mb": round(self.mb, 3)}


ZERO = Cost(0.0, 0.0)


def _trees(model: Any) -> tuple[str, int, float] | None:
    """(kind, number of trees, total tree levels walked per row) of a tree ensemble, or None."""
    if hasattr(model, "booster_"):  # LightGBM: a tree of L leaves has 2L - 1 nodes
        leaves = [t["num_leaves"] for t in model.booster_.dump_model()["tree_info"]]
        return "lightgbm", len(leaves), sum(math.log2(2 * n) for n in leaves)
    if hasattr(model, "tree_count_"):  # CatBoost: oblivious trees, every level walked
        depth = model.get_all_params().get("depth", 6)
        return "catboost", model.tree_count_, float(model.tree_count_ * depth)
    if hasattr(model, "get_booster"):
        dumps = model.get_booster().get_dump()
        levels = sum(math.log2(d.count("\n") + 1) for d in dumps)
        return "xgboost", len(dumps), levels
    if hasattr(model, "_predictors"):  # HistGradientBoosting
        trees = [p for iteration in model._predictors for p in iteration]
        return "hgb", len(trees), sum(math.log2(len(p.nodes) + 1) for p in trees)
    if hasattr(model, "estimators_") and hasattr(model.estimators_[0], "tree_"):
        trees = model.estimators_
        return "forest", len(trees), sum(math.log2(t.tree_.node_count + 1) for t in trees)
    return None


def model_cost(model: Any) -> Cost:
    """A fitted model's estimated cost, on the preprocessed matrix."""
    inner = getattr(model, "regressor_", None)  # a target-standardising wrapper
    if type(model).__name__ == "NativeCategorical":  # one that names categorical columns
        inner = model.estimator_
    if inner is not None:
        return model_cost(inner)
    trees = _trees(model)
    if trees is not None:
        kind, _, levels = trees
        call = CATBOOST_ONE_ROW_MS if kind == "catboost" else TREE_ONE_ROW_MS[0]
        return Cost(call + TREE_ONE_ROW_MS[1] * levels, 0.1 + TREE_LEVEL_MS[kind] * levels)
    if hasattr(model, "coefs_"):  # MLP: a matrix product per layer
        weights = sum(c.size for c in model.coefs_)
        return Cost(0.015 + 1e-6 * weights, 0.05 + 2e-4 * weights)
    if hasattr(model, "coef_"):
        return Cost(0.01, 0.05 + 1e-5 * np.size(model.coef_))
    stored = getattr(model, "support_vectors_", None)
    cells = stored.size if stored is not None else getattr(model, "n_samples_fit_", 0) * getattr(
        model, "n_features_in_", 0)
    if cells:
        return Cost(0.1 + KERNEL_MS * cells, KERNEL_MS * cells * BATCH_ROWS)
    return Cost(*OTHER_MS)


def preprocessor_cost(step: Any) -> Cost:
    """A fitted preprocessing step's estimated cost, from how many columns it makes."""
    try:
        columns = len(step.get_feature_names_out())
    except Exception:  # a step that cannot name its output: as wide as its input
        columns = getattr(step, "n_features_in_", 10)
    (one, one_per), (batch, batch_per) = PREPROCESS_MS
    return Cost(one + one_per * columns, batch + batch_per * columns)


def size_mb(obj: Any) -> float:
    """`obj`'s pickled size in MB (what it adds to a registered model)."""
    import pickle

    return len(pickle.dumps(obj, protocol=pickle.HIGHEST_PROTOCOL)) / 1e6


def sized(cost: Cost, obj: Any) -> Cost:
    return Cost(cost.one_ms, cost.batch_ms, size_mb(obj))


def describe(pipeline: Any) -> dict[str, Any]:
    """A fitted fold pipeline's estimated latencies and measured sizes, as a trial records them (JSON):
    its model's, its preprocessing's, and a key that is equal for equal fitted preprocessing."""
    import joblib

    steps = getattr(pipeline, "steps", None)
    if not steps or len(steps) < 2:
        return {"model": list(astuple(sized(model_cost(pipeline), pipeline))), "preprocess": [0.0, 0.0, 0.0],
                "key": None}
    model, first = steps[-1][1], steps[0][1]
    middle = [step for _, step in steps[1:-1]]  # a feature selector: counted with the model
    return {"model": list(astuple(sized(model_cost(model), [*middle, model]))),
            "preprocess": list(astuple(sized(preprocessor_cost(first), first))), "key": joblib.hash(first)}
