"""What a fitted pipeline costs to predict, estimated from its models' structure (which members fit a
latency limit: tabpilot.ensemble.latency).

Estimated, not timed: the same seed, data and trial count must give the same model on a busy
machine as on a quiet one. The constants are milliseconds of the compiled path (tabpilot.ensemble.compiled)
on one core of the 2-core machines here, fitted to the ~400 fold models of the ten public-suite
tables' 60 s ensembles at 59e6aea; each ensemble's estimate stands beside its measured time in
benchmarks/results/latency_tradeoff_60s.md. benchmarks/predict_cost_fit.py compares them with the
times of kept runs' fold models.
"""
from __future__ import annotations

import math
from dataclasses import astuple, dataclass
from typing import Any, NamedTuple

import numpy as np

BATCH_ROWS = 1000  # `Cost.batch_ms` is for this many rows at once
# 1,000 rows through a tree ensemble, in milliseconds: fixed, per tree level walked by a row, per node
# stored (a batch loads every tree once per block of rows). Fitted per level on the suite's ~400 fold models.
# Refitted with the nodes on 805 models with 1M-row ones (results/predict_cost_fit.md: XGBoost's 900 x depth-8
# trees take 3x their estimate), the public suite got worse (results/suite_60s_a63e01e_predict_cost.md;
# branch predict-cost-refit), so these stay until the cause is known.
TREE_BATCH_MS = {"forest": (0.1, 0.0135, 0.0), "hgb": (0.1, 0.0080, 0.0), "xgboost": (0.1, 0.0030, 0.0),
                 "lightgbm": (0.1, 0.010, 0.0), "catboost": (0.1, 0.0010, 0.0)}
CATBOOST_CATEGORICAL_MS = 0.0  # per column CatBoost encodes itself, per 1,000 rows (fitted: 0.25; not in use)
CATBOOST_ONE_ROW_MS = 0.3  # its own predict on one row, the wrapper's integer codes included (0.17-0.38)
TREE_ONE_ROW_MS = (0.05, 0.00003)  # a call, and per tree level, for one row through Treelite
MLP_MS = ((0.015, 1e-6), (0.05, 2e-4))  # one row, 1,000 rows: fixed, per weight (fitted: 2.6e-5, not in use)
KERNEL_MS = 2e-6  # per stored row x column x predicted row: SVM support vectors, KNN's fitted rows
OTHER_MS = (0.2, 20.0)  # a model of a kind not known here: one row, 1,000 rows
PREPROCESS_MS = ((0.05, 0.01), (0.3, 0.12))  # one row, 1,000 rows: fixed, and per output column
# A one-hot part of every level (tabpilot.data.preprocessing's every_level) is looked up per input column
# and assembled as a sparse matrix: one row, 1,000 rows, fixed (whole predict measured: 0.10 and 0.40 ms
# with 6,247 levels, results/every_level_60s.md)
LEVELS_MS = (0.05, 0.2)


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


class Trees(NamedTuple):
    kind: str
    count: int
    levels: float  # tree levels walked per row, summed over the trees
    nodes: int  # nodes stored, summed over the trees (what a batch loads from memory)
    categorical: int = 0  # columns the model encodes itself on every row (CatBoost's target statistics)


def _trees(model: Any) -> Trees | None:
    """A tree ensemble's kind and size, or None."""
    if hasattr(model, "booster_"):  # LightGBM: a tree of L leaves has 2L - 1 nodes
        leaves = [t["num_leaves"] for t in model.booster_.dump_model()["tree_info"]]
        return Trees("lightgbm", len(leaves), sum(math.log2(2 * n) for n in leaves), sum(2 * n - 1 for n in leaves))
    if hasattr(model, "tree_count_"):  # CatBoost: oblivious trees, every level walked
        depth = model.get_all_params().get("depth", 6)
        return Trees("catboost", model.tree_count_, float(model.tree_count_ * depth), model.tree_count_ * 2 ** depth,
                     len(model.get_cat_feature_indices()))
    if hasattr(model, "get_booster"):
        nodes = [d.count("\n") for d in model.get_booster().get_dump()]
        return Trees("xgboost", len(nodes), sum(math.log2(n + 1) for n in nodes), sum(nodes))
    if hasattr(model, "_predictors"):  # HistGradientBoosting
        nodes = [len(p.nodes) for iteration in model._predictors for p in iteration]
        return Trees("hgb", len(nodes), sum(math.log2(n + 1) for n in nodes), sum(nodes))
    if hasattr(model, "estimators_") and hasattr(model.estimators_[0], "tree_"):
        nodes = [t.tree_.node_count for t in model.estimators_]
        return Trees("forest", len(nodes), sum(math.log2(n + 1) for n in nodes), sum(nodes))
    return None


def unwrapped(model: Any) -> Any:
    """The model that predicts, inside a target-standardising or categorical-naming wrapper."""
    inner = getattr(model, "regressor_", None)  # a target-standardising wrapper
    if type(model).__name__ == "NativeCategorical":  # one that names categorical columns
        inner = model.estimator_
    return model if inner is None else unwrapped(inner)


def model_cost(model: Any) -> Cost:
    """A fitted model's estimated cost, on the preprocessed matrix."""
    model = unwrapped(model)
    trees = _trees(model)
    if trees is not None:
        call = CATBOOST_ONE_ROW_MS if trees.kind == "catboost" else TREE_ONE_ROW_MS[0]
        fixed, per_level, per_node = TREE_BATCH_MS[trees.kind]
        return Cost(call + TREE_ONE_ROW_MS[1] * trees.levels, fixed + per_level * trees.levels
                    + per_node * trees.nodes + CATBOOST_CATEGORICAL_MS * trees.categorical)
    if hasattr(model, "coefs_"):  # MLP: a matrix product per layer
        weights = sum(c.size for c in model.coefs_)
        (one, one_per), (batch, batch_per) = MLP_MS
        return Cost(one + one_per * weights, batch + batch_per * weights)
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
    sparse = _sparse_encoders(step)
    if sparse:  # each input column once, not each of its levels
        columns -= sum(sum(map(len, encoder.categories_)) - len(cols) for encoder, cols in sparse)
        one, batch = one + LEVELS_MS[0], batch + LEVELS_MS[1]
    return Cost(one + one_per * columns, batch + batch_per * columns)


def _sparse_encoders(step: Any) -> list[tuple[Any, list[str]]]:
    """A fitted ColumnTransformer's sparse one-hot encoders (every_level), each with its input columns."""
    found = []
    for _, part, cols in getattr(step, "transformers_", []):
        last = part.steps[-1][1] if hasattr(part, "steps") else part
        if getattr(last, "sparse_output", False) and hasattr(last, "categories_"):
            found.append((last, list(cols)))
    return found


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
