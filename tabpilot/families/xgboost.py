"""XGBoost's gradient-boosted trees (hist), with its native categorical splits (native_categorical.py)."""
from __future__ import annotations

from typing import Any

from tabpilot.families.spec import Context, Family, Scaled

MIN_TREE_FEATURES = 2  # columns each XGBoost tree sees, at the least


def _xgboost(p: dict[str, Any], c: Context) -> Any:
    from xgboost import XGBClassifier, XGBRegressor

    from tabpilot.families.native_categorical import EARLY_STOP_ROWS, NativeCategorical

    cls = XGBRegressor if c.task == "regression" else XGBClassifier
    params = dict(p)
    if c.n_features:
        # XGBoost gives a tree floor(colsample_bytree x columns) of them, at least 1; a tree of one column is
        # additive and cannot model any interaction (on a two-column XOR, no tree can split usefully).
        # The half keeps float32 rounding from flooring 2 columns to 1.
        floor = min(1.0, (MIN_TREE_FEATURES + 0.5) / c.n_features)
        params["colsample_bytree"] = max(params["colsample_bytree"], floor)
    model = cls(**params, tree_method="hist", n_jobs=1, random_state=c.seed, verbosity=0)
    # Categorical columns split by category sets, not as codes in an arbitrary order; large fits stop early.
    return NativeCategorical(model, c.categorical, EARLY_STOP_ROWS)


FAMILY = Family(
    "xgboost", _xgboost,
    space={
        "n_estimators": ("logint", 50, 1000),
        "learning_rate": ("loguniform", 0.01, 0.3),
        "max_depth": ("int", 2, 10),
        "subsample": ("uniform", 0.5, 1.0),
        "colsample_bytree": ("uniform", 0.3, 1.0),
        "min_child_weight": ("loguniform", 0.5, Scaled(0.005, 5, 50)),
        "reg_lambda": ("loguniform", 1e-3, 10.0),
        "reg_alpha": ("loguniform", 1e-4, 1.0),
    },
    default={"n_estimators": 200, "learning_rate": 0.1, "max_depth": 6, "subsample": 0.8,
             "colsample_bytree": 0.8, "min_child_weight": 1.0, "reg_lambda": 1.0, "reg_alpha": 1e-4},
    cost_rank=3)
