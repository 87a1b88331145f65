"""CatBoost, whose ordered target statistics encode high-cardinality categoricals."""
from __future__ import annotations

from typing import Any

from tabpilot.families.spec import Context, Family


def _catboost(p: dict[str, Any], c: Context) -> Any:
    from catboost import CatBoostClassifier, CatBoostRegressor

    from tabpilot.families.native_categorical import NativeCategorical

    cls = CatBoostRegressor if c.task == "regression" else CatBoostClassifier
    # allow_writing_files: CatBoost would leave a catboost_info/ folder in the user's directory.
    model = cls(iterations=p["iterations"], learning_rate=p["learning_rate"], depth=p["depth"],
                l2_leaf_reg=p["l2_leaf_reg"], random_strength=p["random_strength"], thread_count=1,
                random_seed=c.seed, verbose=False, allow_writing_files=False)
    return NativeCategorical(model, c.categorical)


FAMILY = Family(
    "catboost", _catboost,
    space={
        "iterations": ("logint", 50, 1000),
        "learning_rate": ("loguniform", 0.01, 0.3),
        "depth": ("int", 3, 10),
        "l2_leaf_reg": ("loguniform", 0.5, 30.0),
        "random_strength": ("uniform", 0.0, 2.0),
    },
    # CatBoost's own defaults are 1,000 rounds at a learning rate it picks from the rows; 300 at 0.1
    # is its usual quick start, a few seconds on a table of 10,000 rows and one core.
    default={"iterations": 300, "learning_rate": 0.1, "depth": 6, "l2_leaf_reg": 3.0, "random_strength": 1.0},
    cost_rank=10,
    )
