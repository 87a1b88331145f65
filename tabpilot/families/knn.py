"""k nearest neighbours."""
from __future__ import annotations

from typing import Any

from tabpilot.families.spec import Context, Family, Scaled


def _knn(p: dict[str, Any], c: Context) -> Any:
    from sklearn.neighbors import KNeighborsClassifier, KNeighborsRegressor

    cls = KNeighborsRegressor if c.task == "regression" else KNeighborsClassifier
    return cls(n_neighbors=p["n_neighbors"], weights=p["weights"], p=p["p"])


FAMILY = Family(
    "knn", _knn,
    space={
        "n_neighbors": ("logint", 2, Scaled(0.05, 10, 100)),
        "weights": ("choice", ["uniform", "distance"]),
        "p": ("choice", [1, 2]),
    },
    default={"n_neighbors": 10, "weights": "distance", "p": 2},
    cost_rank=6, dense=True, max_rows=100_000)
