"""scikit-learn's HistGradientBoosting, with its native categorical support."""
from __future__ import annotations

from typing import Any

from tabpilot.families.spec import Context, Family, Scaled


def _hist_gb(p: dict[str, Any], c: Context) -> Any:
    from sklearn.ensemble import HistGradientBoostingClassifier, HistGradientBoostingRegressor

    cls = HistGradientBoostingRegressor if c.task == "regression" else HistGradientBoostingClassifier
    # Without early stopping the rounds follow the learning rate: 100 at 0.1, as scikit-learn ships.
    native = [col for col in c.categorical if col not in c.wide]  # wider ones: their codes, as numbers
    rounds = 1000 if p["early_stopping"] else int(min(500, max(50, round(10.0 / p["learning_rate"]))))
    return cls(learning_rate=p["learning_rate"], max_leaf_nodes=p["max_leaf_nodes"],
               min_samples_leaf=p["min_samples_leaf"], l2_regularization=p["l2_regularization"],
               max_features=p["max_features"], max_iter=rounds, early_stopping=p["early_stopping"],
               n_iter_no_change=20, validation_fraction=0.1,
               categorical_features=native or None, random_state=c.seed)


DEFAULT = {"learning_rate": 0.1, "max_leaf_nodes": 31, "min_samples_leaf": 20, "l2_regularization": 1e-6,
           "max_features": 1.0, "early_stopping": True}

FAMILY = Family(
    "hist_gb", _hist_gb,
    space={
        "learning_rate": ("loguniform", 0.01, 0.3),
        "max_leaf_nodes": ("logint", 4, 128),
        "min_samples_leaf": ("logint", 2, Scaled(0.02, 20, 200)),
        "l2_regularization": ("loguniform", 1e-6, 10.0),
        "max_features": ("uniform", 0.3, 1.0),
        # Off: a fixed number of rounds on every row (scikit-learn's own default below 10k rows),
        # which beat early stopping's 10% validation split on small regression tables (ames).
        "early_stopping": ("choice", [True, False]),
    },
    default=DEFAULT,
    cost_rank=1,
    # scikit-learn's HGB as it ships (no early stopping below 10k rows) wins where a validation split
    # costs too many rows.
    extra_defaults=({**DEFAULT, "early_stopping": False},),
    added_later={"early_stopping": True})
