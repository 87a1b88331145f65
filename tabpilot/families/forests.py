"""Random forests and extremely randomised trees (scikit-learn's)."""
from __future__ import annotations

from collections.abc import Callable
from typing import Any

from tabpilot.families.spec import Context, Family, Scaled


def _forest(classifier: str, regressor: str) -> Callable[[dict[str, Any], Context], Any]:
    def build(p: dict[str, Any], c: Context) -> Any:
        import sklearn.ensemble

        cls = getattr(sklearn.ensemble, regressor if c.task == "regression" else classifier)
        return cls(n_estimators=p["n_estimators"], max_features=p["max_features"],
                   min_samples_leaf=p["min_samples_leaf"], max_depth=p["max_depth"],
                   n_jobs=1, random_state=c.seed)
    return build


def _space() -> dict[str, Any]:
    return {
        "n_estimators": ("logint", 50, 400),
        "max_features": ("uniform", 0.1, 1.0),
        "min_samples_leaf": ("logint", 1, Scaled(0.01, 5, 50)),
        "max_depth": ("choice", [None, 6, 12, 24]),
    }


RANDOM_FOREST = Family(
    "random_forest", _forest("RandomForestClassifier", "RandomForestRegressor"), space=_space(),
    default={"n_estimators": 200, "max_features": 0.5, "min_samples_leaf": 1, "max_depth": None},
    cost_rank=4)

EXTRA_TREES = Family(
    "extra_trees", _forest("ExtraTreesClassifier", "ExtraTreesRegressor"), space=_space(),
    default={"n_estimators": 200, "max_features": 0.7, "min_samples_leaf": 2, "max_depth": None},
    cost_rank=5)
