"""Linear models: logistic regression or ridge, and the elastic net."""
from __future__ import annotations

from typing import Any

from tabpilot.families.spec import Context, Family


def _linear(p: dict[str, Any], c: Context) -> Any:
    from sklearn.linear_model import LogisticRegression, Ridge

    if c.task == "regression":
        return Ridge(alpha=1.0 / p["C"], random_state=c.seed)
    return LogisticRegression(C=p["C"], class_weight=p["class_weight"], max_iter=2000, random_state=c.seed)


def _elastic_net(p: dict[str, Any], c: Context) -> Any:
    from sklearn.linear_model import ElasticNet, LogisticRegression

    if c.task == "regression":
        return ElasticNet(alpha=1.0 / p["C"], l1_ratio=p["l1_ratio"], max_iter=5000, random_state=c.seed)
    # saga's epochs past 200 bought nothing measurable (caravan's 5-fold AUC .7367 at 1000, .7372 at 200)
    # and cost 4.6x the time: 7 s of a 60 s search for one unconverged trial.
    return LogisticRegression(C=p["C"], l1_ratio=p["l1_ratio"], solver="saga", max_iter=200, random_state=c.seed)


LINEAR = Family(
    "linear", _linear,
    space={
        # Inverse regularisation strength, shared by logistic regression (C) and ridge (alpha = 1 / C).
        "C": ("loguniform", 1e-3, 1e2),
        "class_weight": ("choice", [None, "balanced"]),
    },
    default={"C": 1.0, "class_weight": None},
    cost_rank=0, dense=True, every_level=True)

ELASTIC_NET = Family(
    "elastic_net", _elastic_net,
    space={"C": ("loguniform", 1e-3, 1e2), "l1_ratio": ("uniform", 0.0, 1.0)},
    default={"C": 1.0, "l1_ratio": 0.5},
    # (elastic net's saga solver took 20 s per fit on 40k rows of diamonds_cut: ridge covers linear there.)
    cost_rank=7, dense=True, every_level=True, max_rows=30_000)
