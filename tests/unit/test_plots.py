"""The report's figures are written as PNG files, whatever the task."""
from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
from sklearn.pipeline import Pipeline
from sklearn.preprocessing import StandardScaler

from tabpilot.core import plots
from tabpilot.core.metrics import resolve

PNG = b"\x89PNG"


def test_every_figure_is_a_png(tmp_path: Path) -> None:
    from sklearn.ensemble import HistGradientBoostingClassifier
    from sklearn.linear_model import LogisticRegression

    rng = np.random.default_rng(0)
    X = pd.DataFrame({"a": rng.normal(size=200), "b": rng.normal(size=200)})
    y = (X["a"] > 0).astype(int).to_numpy()
    linear = Pipeline([("scale", StandardScaler()), ("model", LogisticRegression())]).fit(X, y)
    trials = [{"score": 0.7 + 0.01 * i, "started": 100.0 + i, "finished": 101.0 + i} for i in range(5)]
    members = [{"trial": 1, "family": "linear", "weight": 1.0}]
    metric = resolve("roc_auc", "binary")
    drawn = plots.draw_run(tmp_path, trials, members, [linear], metric, "binary", ["no", "yes"], y,
                           linear.predict_proba(X))
    assert {p.name for p in drawn} == {"convergence.png", "ensemble_weights.png", "feature_importance.png",
                                       "confusion_matrix.png"}
    assert all(p.read_bytes()[:4] == PNG for p in drawn)
    names, values, _ = plots.member_importance([linear], ["#1 linear"])
    assert names == ["a", "b"] and values[0] > values[1]  # only `a` carries the signal

    boosted = Pipeline([("model", HistGradientBoostingClassifier(max_iter=20))]).fit(X, y)
    assert plots.member_importance([boosted], ["#2 hist_gb"]) is None  # no importances of its own
    names, drops = plots.permutation_importance(boosted, X, y, metric, "binary", 0)
    assert names == ["a", "b"] and drops[0] > drops[1]
    regression = plots.draw_run(tmp_path / "r", trials, members, [boosted], resolve("rmse", "regression"),
                                "regression", [], X["a"].to_numpy(), X["a"].to_numpy() + 0.1)
    assert {p.name for p in regression} == {"convergence.png", "ensemble_weights.png", "residuals.png"}
