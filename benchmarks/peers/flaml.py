"""FLAML: AutoML().fit(time_budget=budget, n_jobs=2, seed=0, metric=<the protocol's metric>).
Run by benchmarks/.venvs/flaml/bin/python (flaml[automl]==2.7.0). FLAML's log goes to the work dir.
"""
from __future__ import annotations

import sys

import numpy as np
from flaml import AutoML

from peers.common import Run, align_proba, main

PACKAGES = ("flaml", "lightgbm", "xgboost", "scikit-learn", "pandas", "numpy")


def fit_predict(run: Run) -> np.ndarray:
    split = run.split
    automl = AutoML()
    automl.fit(split.X_train, split.y_train,
               task="classification" if split.is_classification else "regression",
               metric=split.metric, time_budget=run.budget, n_jobs=2, seed=0,
               log_file_name=str(run.workdir / "flaml.log"), verbose=0)
    run.notes["best_estimator"] = automl.best_estimator
    if not split.is_classification:
        return automl.predict(split.X_test)
    return align_proba(automl.predict_proba(split.X_test), automl.classes_, split.labels)


if __name__ == "__main__":
    sys.exit(main("flaml", fit_predict, PACKAGES))
