"""Multilayer perceptrons (scikit-learn's)."""
from __future__ import annotations

from typing import Any

from tabpilot.families.spec import Context, Family


def _mlp(p: dict[str, Any], c: Context) -> Any:
    from sklearn.neural_network import MLPClassifier, MLPRegressor

    cls = MLPRegressor if c.task == "regression" else MLPClassifier
    return cls(hidden_layer_sizes=tuple(int(u) for u in p["hidden"].split("-")), alpha=p["alpha"],
               learning_rate_init=p["learning_rate_init"], batch_size=p["batch_size"], max_iter=200,
               early_stopping=True, n_iter_no_change=10, random_state=c.seed)


FAMILY = Family(
    "mlp", _mlp,
    space={
        "hidden": ("choice", ["64", "128", "256", "64-64", "128-64", "256-128"]),
        "alpha": ("loguniform", 1e-6, 1e-1),
        "learning_rate_init": ("loguniform", 1e-4, 3e-2),
        "batch_size": ("choice", [32, 64, 128, 256]),
    },
    default={"hidden": "128-64", "alpha": 1e-4, "learning_rate_init": 1e-3, "batch_size": 128},
    cost_rank=8, dense=True)
