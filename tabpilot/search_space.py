"""Each algorithm family's hyperparameter space and its known-good default, as plain data.

A dimension is a tuple: ("uniform", low, high), ("loguniform", low, high), ("int", low, high),
("logint", low, high) or ("choice", [options]). The hyperopt adapter (`tabpilot.hpo`) turns these
into hyperopt expressions labelled `family.param`; nothing here depends on hyperopt.
Adding a family means adding one entry here and one builder in `tabpilot.models`.
"""
from __future__ import annotations

from typing import Any

Dim = tuple[Any, ...]

SPACES: dict[str, dict[str, Dim]] = {
    "linear": {
        # Inverse regularisation strength, shared by logistic regression (C) and ridge (alpha = 1 / C).
        "C": ("loguniform", 1e-3, 1e2),
        "class_weight": ("choice", [None, "balanced"]),
    },
    "random_forest": {
        "n_estimators": ("logint", 50, 400),
        "max_features": ("uniform", 0.1, 1.0),
        "min_samples_leaf": ("logint", 1, 30),
        "max_depth": ("choice", [None, 6, 12, 24]),
    },
    "extra_trees": {
        "n_estimators": ("logint", 50, 400),
        "max_features": ("uniform", 0.1, 1.0),
        "min_samples_leaf": ("logint", 1, 30),
        "max_depth": ("choice", [None, 6, 12, 24]),
    },
    "hist_gb": {
        "learning_rate": ("loguniform", 0.01, 0.3),
        "max_leaf_nodes": ("logint", 4, 128),
        "min_samples_leaf": ("logint", 2, 100),
        "l2_regularization": ("loguniform", 1e-6, 10.0),
        "max_features": ("uniform", 0.3, 1.0),
    },
    "xgboost": {
        "n_estimators": ("logint", 50, 1000),
        "learning_rate": ("loguniform", 0.01, 0.3),
        "max_depth": ("int", 2, 10),
        "subsample": ("uniform", 0.5, 1.0),
        "colsample_bytree": ("uniform", 0.3, 1.0),
        "min_child_weight": ("loguniform", 0.5, 20.0),
        "reg_lambda": ("loguniform", 1e-3, 10.0),
        "reg_alpha": ("loguniform", 1e-4, 1.0),
    },
}

# Library defaults (or the community's usual starting point), evaluated before the search proper,
# cheapest first: a strong baseline is on the board within seconds.
DEFAULTS: dict[str, dict[str, Any]] = {
    "linear": {"C": 1.0, "class_weight": None},
    "hist_gb": {"learning_rate": 0.1, "max_leaf_nodes": 31, "min_samples_leaf": 20,
                "l2_regularization": 1e-6, "max_features": 1.0},
    "xgboost": {"n_estimators": 200, "learning_rate": 0.1, "max_depth": 6, "subsample": 0.8,
                "colsample_bytree": 0.8, "min_child_weight": 1.0, "reg_lambda": 1.0, "reg_alpha": 1e-4},
    "random_forest": {"n_estimators": 200, "max_features": 0.5, "min_samples_leaf": 1, "max_depth": None},
    "extra_trees": {"n_estimators": 200, "max_features": 0.7, "min_samples_leaf": 2, "max_depth": None},
}
COST_ORDER = ("linear", "hist_gb", "xgboost", "random_forest", "extra_trees")


def cast(family: str, params: dict[str, Any]) -> dict[str, Any]:
    """Give sampled values the types their estimators expect (hyperopt returns floats for ints)."""
    out = {}
    for name, value in params.items():
        kind = SPACES[family][name][0]
        out[name] = int(round(value)) if kind in ("int", "logint") and value is not None else value
    return out


def defaults_in_order(families: tuple[str, ...]) -> list[dict[str, Any]]:
    """The default configuration of every enabled family, cheapest family first."""
    return [{"family": f, "params": dict(DEFAULTS[f])} for f in COST_ORDER if f in families]
