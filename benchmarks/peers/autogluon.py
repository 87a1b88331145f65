"""AutoGluon: TabularPredictor(eval_metric=<the protocol's metric>).fit(presets="best_quality",
time_limit=budget, num_cpus=2). Run by benchmarks/.venvs/autogluon/bin/python
(autogluon.tabular[lightgbm,catboost,xgboost]==1.6.3). Models are saved under the work dir.
"""
from __future__ import annotations

import sys

import numpy as np
from autogluon.tabular import TabularPredictor

from peers.common import Run, align_proba, main

EVAL_METRIC = {"roc_auc": "roc_auc", "log_loss": "log_loss", "rmse": "root_mean_squared_error"}
PACKAGES = ("autogluon.tabular", "lightgbm", "catboost", "xgboost-cpu", "torch", "scikit-learn",
            "pandas", "numpy")


def fit_predict(run: Run) -> np.ndarray:
    split = run.split
    predictor = TabularPredictor(label=split.target, problem_type=split.task,
                                 eval_metric=EVAL_METRIC[split.metric],
                                 path=str(run.workdir / "autogluon"), verbosity=1)
    predictor.fit(split.train_frame(), presets="best_quality", time_limit=run.budget, num_cpus=2)
    run.notes["best_model"] = predictor.model_best
    run.notes["models_trained"] = len(predictor.model_names())
    if not split.is_classification:
        return predictor.predict(split.X_test).to_numpy(dtype=float)
    proba = predictor.predict_proba(split.X_test)
    return align_proba(proba, proba.columns, split.labels)


if __name__ == "__main__":
    sys.exit(main("autogluon", fit_predict, PACKAGES))
