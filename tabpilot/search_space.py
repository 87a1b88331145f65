"""Each algorithm family's hyperparameter space and its known-good default, as plain data.

A dimension is a tuple: ("uniform", low, high), ("loguniform", low, high), ("int", low, high),
("logint", low, high) or ("choice", [options]). A bound may be `Scaled(share, low, high)`: that
share of the training rows, clipped, so neighbourhoods and leaf sizes grow with the data.
The hyperopt adapter (`tabpilot.hpo`) turns these into hyperopt expressions labelled
`family.param`; nothing here depends on hyperopt.
Adding a family means adding one entry here and one builder in `tabpilot.models`.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any

Dim = tuple[Any, ...]


@dataclass(frozen=True)
class Scaled:
    """A bound that is `share` of the training rows, clipped to [low, high]."""

    share: float
    low: float
    high: float

    def at(self, rows: int) -> float:
        return float(min(self.high, max(self.low, round(rows * self.share))))

SPACES: dict[str, dict[str, Dim]] = {
    "linear": {
        # Inverse regularisation strength, shared by logistic regression (C) and ridge (alpha = 1 / C).
        "C": ("loguniform", 1e-3, 1e2),
        "class_weight": ("choice", [None, "balanced"]),
    },
    "elastic_net": {
        "C": ("loguniform", 1e-3, 1e2),
        "l1_ratio": ("uniform", 0.0, 1.0),
    },
    "knn": {
        "n_neighbors": ("logint", 2, Scaled(0.05, 10, 100)),
        "weights": ("choice", ["uniform", "distance"]),
        "p": ("choice", [1, 2]),
    },
    "svm": {
        "C": ("loguniform", 1e-2, 1e3),
        "gamma": ("loguniform", 1e-4, 1.0),
    },
    "mlp": {
        "hidden": ("choice", ["64", "128", "256", "64-64", "128-64", "256-128"]),
        "alpha": ("loguniform", 1e-6, 1e-1),
        "learning_rate_init": ("loguniform", 1e-4, 3e-2),
        "batch_size": ("choice", [32, 64, 128, 256]),
    },
    "random_forest": {
        "n_estimators": ("logint", 50, 400),
        "max_features": ("uniform", 0.1, 1.0),
        "min_samples_leaf": ("logint", 1, Scaled(0.01, 5, 50)),
        "max_depth": ("choice", [None, 6, 12, 24]),
    },
    "extra_trees": {
        "n_estimators": ("logint", 50, 400),
        "max_features": ("uniform", 0.1, 1.0),
        "min_samples_leaf": ("logint", 1, Scaled(0.01, 5, 50)),
        "max_depth": ("choice", [None, 6, 12, 24]),
    },
    "hist_gb": {
        "learning_rate": ("loguniform", 0.01, 0.3),
        "max_leaf_nodes": ("logint", 4, 128),
        "min_samples_leaf": ("logint", 2, Scaled(0.02, 20, 200)),
        "l2_regularization": ("loguniform", 1e-6, 10.0),
        "max_features": ("uniform", 0.3, 1.0),
        # Off: a fixed number of rounds on every row (scikit-learn's own default below 10k rows),
        # which beat early stopping's 10% validation split on small regression tables (ames).
        "early_stopping": ("choice", [True, False]),
    },
    "xgboost": {
        "n_estimators": ("logint", 50, 1000),
        "learning_rate": ("loguniform", 0.01, 0.3),
        "max_depth": ("int", 2, 10),
        "subsample": ("uniform", 0.5, 1.0),
        "colsample_bytree": ("uniform", 0.3, 1.0),
        "min_child_weight": ("loguniform", 0.5, Scaled(0.005, 5, 50)),
        "reg_lambda": ("loguniform", 1e-3, 10.0),
        "reg_alpha": ("loguniform", 1e-4, 1.0),
    },
    "lightgbm": {
        "n_estimators": ("logint", 50, 1000),
        "learning_rate": ("loguniform", 0.01, 0.3),
        "num_leaves": ("logint", 4, 256),
        "min_child_samples": ("logint", 2, Scaled(0.02, 20, 200)),
        "subsample": ("uniform", 0.5, 1.0),
        "colsample_bytree": ("uniform", 0.3, 1.0),
        "reg_lambda": ("loguniform", 1e-3, 10.0),
        # Smoothing of a category's statistics toward the whole table's: more for rare levels.
        "cat_smooth": ("loguniform", 1.0, 100.0),
    },
    "catboost": {
        "iterations": ("logint", 50, 1000),
        "learning_rate": ("loguniform", 0.01, 0.3),
        "depth": ("int", 3, 10),
        "l2_leaf_reg": ("loguniform", 0.5, 30.0),
        "random_strength": ("uniform", 0.0, 2.0),
    },
}

# Library defaults (or the community's usual starting point), evaluated before the search proper,
# cheapest first: a strong baseline is on the board within seconds.
DEFAULTS: dict[str, dict[str, Any]] = {
    "linear": {"C": 1.0, "class_weight": None},
    "hist_gb": {"learning_rate": 0.1, "max_leaf_nodes": 31, "min_samples_leaf": 20,
                "l2_regularization": 1e-6, "max_features": 1.0, "early_stopping": True},
    "xgboost": {"n_estimators": 200, "learning_rate": 0.1, "max_depth": 6, "subsample": 0.8,
                "colsample_bytree": 0.8, "min_child_weight": 1.0, "reg_lambda": 1.0, "reg_alpha": 1e-4},
    "random_forest": {"n_estimators": 200, "max_features": 0.5, "min_samples_leaf": 1, "max_depth": None},
    "extra_trees": {"n_estimators": 200, "max_features": 0.7, "min_samples_leaf": 2, "max_depth": None},
    "elastic_net": {"C": 1.0, "l1_ratio": 0.5},
    "knn": {"n_neighbors": 10, "weights": "distance", "p": 2},
    "mlp": {"hidden": "128-64", "alpha": 1e-4, "learning_rate_init": 1e-3, "batch_size": 128},
    "svm": {"C": 1.0, "gamma": 0.05},
    "lightgbm": {"n_estimators": 100, "learning_rate": 0.1, "num_leaves": 31, "min_child_samples": 20,
                 "subsample": 1.0, "colsample_bytree": 1.0, "reg_lambda": 1e-3, "cat_smooth": 10.0},
    # CatBoost's own defaults are 1,000 rounds at a learning rate it picks from the rows; 300 at 0.1
    # is its usual quick start, a few seconds on a table of 10,000 rows and one core.
    "catboost": {"iterations": 300, "learning_rate": 0.1, "depth": 6, "l2_leaf_reg": 3.0, "random_strength": 1.0},
}
# Further starting points, each tried right after its family's default: scikit-learn's HGB as it
# ships (no early stopping below 10k rows) wins where a validation split costs too many rows.
EXTRA_DEFAULTS: dict[str, list[dict[str, Any]]] = {
    "hist_gb": [{**DEFAULTS["hist_gb"], "early_stopping": False}],
}
# Values for hyperparameters added after a configuration was stored (the shipped portfolio, a
# champion's members): the value that reproduces how it was trained.
ADDED_LATER: dict[str, dict[str, Any]] = {"hist_gb": {"early_stopping": True}}
COST_ORDER = ("linear", "hist_gb", "lightgbm", "xgboost", "random_forest", "extra_trees", "knn", "elastic_net", "mlp",
              "svm", "catboost")
# Families whose cost grows too fast with rows to be worth a trial past these sizes.
# (elastic net's saga solver took 20 s per fit on 40k rows of diamonds_cut: ridge covers linear there.)
MAX_ROWS = {"svm": 10_000, "knn": 100_000, "elastic_net": 30_000}


def applicable(families: tuple[str, ...], rows: int) -> tuple[str, ...]:
    """The enabled families worth searching on a training set of `rows` rows."""
    return tuple(f for f in families if rows <= MAX_ROWS.get(f, rows))


def space_for(family: str, rows: int) -> dict[str, Dim]:
    """A family's space with its `Scaled` bounds resolved for `rows` training rows."""
    return {name: tuple(b.at(rows) if isinstance(b, Scaled) else b for b in dim)
            for name, dim in SPACES[family].items()}


def fits_space(config: dict[str, Any]) -> bool:
    """Whether a stored configuration (portfolio, warm start) names a known family and valid choices."""
    space = SPACES.get(config.get("family", ""))
    if space is None:
        return False
    params = {**ADDED_LATER.get(config["family"], {}), **config.get("params", {})}
    if set(params) != set(space):
        return False
    return all(params[n] in d[1] for n, d in space.items() if d[0] == "choice")


def clip_to_space(family: str, params: dict[str, Any], rows: int) -> dict[str, Any]:
    """Move a configuration's numeric values inside the space for `rows` rows (defaults, warm starts)."""
    space = space_for(family, rows)
    out = {**ADDED_LATER.get(family, {}), **params}
    for name, dim in space.items():
        if dim[0] != "choice" and out.get(name) is not None:
            out[name] = min(max(out[name], dim[1]), dim[2])
    return cast(family, out)  # a `Scaled` bound is a float: an integer parameter clipped to it is not


def cast(family: str, params: dict[str, Any]) -> dict[str, Any]:
    """Give sampled values the types their estimators expect (hyperopt returns floats for ints)."""
    out = {}
    for name, value in params.items():
        kind = SPACES[family][name][0]
        out[name] = int(round(value)) if kind in ("int", "logint") and value is not None else value
    return out


def defaults_in_order(families: tuple[str, ...], rows: int) -> list[dict[str, Any]]:
    """The default configurations of every enabled family, cheapest family first."""
    return [{"family": f, "params": clip_to_space(f, params, rows)}
            for f in COST_ORDER if f in families for params in [DEFAULTS[f], *EXTRA_DEFAULTS.get(f, [])]]
