"""Support vector machines with an RBF kernel."""
from __future__ import annotations

from typing import Any

from tabpilot.families.spec import Context, Family


def _svm(p: dict[str, Any], c: Context) -> Any:
    from sklearn.svm import SVC, SVR

    if c.task == "regression":
        return SVR(C=p["C"], gamma=p["gamma"])
    return SVC(C=p["C"], gamma=p["gamma"], probability=True, random_state=c.seed)


FAMILY = Family(
    "svm", _svm,
    space={"C": ("loguniform", 1e-2, 1e3), "gamma": ("loguniform", 1e-4, 1.0)},
    default={"C": 1.0, "gamma": 0.05},
    cost_rank=9, dense=True, max_rows=10_000)
