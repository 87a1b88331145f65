"""LightGBM, with its native categorical splits (tabpilot.families.native_categorical)."""
from __future__ import annotations

from typing import Any

from tabpilot.families.spec import Context, Family, Scaled


def _lightgbm(p: dict[str, Any], c: Context) -> Any:
    from lightgbm import LGBMClassifier, LGBMRegressor

    from tabpilot.families.native_categorical import EARLY_STOP_ROWS, NativeCategorical

    cls = LGBMRegressor if c.task == "regression" else LGBMClassifier
    # A category needs as many rows as a leaf (LightGBM's own floor, 100, is most of a small table's fold).
    model = cls(n_estimators=p["n_estimators"], learning_rate=p["learning_rate"], num_leaves=p["num_leaves"],
                min_child_samples=p["min_child_samples"], min_data_per_group=p["min_child_samples"],
                subsample=p["subsample"], subsample_freq=1 if p["subsample"] < 1.0 else 0,
                colsample_bytree=p["colsample_bytree"], reg_lambda=p["reg_lambda"], cat_smooth=p["cat_smooth"],
                n_jobs=1, random_state=c.seed, verbose=-1)
    return NativeCategorical(model, c.categorical, EARLY_STOP_ROWS)  # large fits stop early


FAMILY = Family(
    "lightgbm", _lightgbm,
    space={
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
    default={"n_estimators": 100, "learning_rate": 0.1, "num_leaves": 31, "min_child_samples": 20,
             "subsample": 1.0, "colsample_bytree": 1.0, "reg_lambda": 1e-3, "cat_smooth": 10.0},
    cost_rank=2)
