"""H2O: h2o.init(nthreads=2), then H2OAutoML(max_runtime_secs=budget, seed=0, nfolds=5,
sort_metric=<the protocol's metric>); the cluster is shut down afterwards. Run by
benchmarks/.venvs/h2o/bin/python (h2o==3.46.*); needs Java on PATH.

The cluster is started on a free local port of its own (h2o.init would otherwise attach to any
H2O already listening on 54321), with its temp files and logs in the work dir. The timed part
includes the JVM start, as in the reference run.
"""
from __future__ import annotations

import socket
import sys

import h2o
import numpy as np
import pandas as pd
from h2o.automl import H2OAutoML

from peers.common import Run, Split, align_proba, main

SORT_METRIC = {"roc_auc": "AUC", "log_loss": "logloss", "rmse": "RMSE"}
PACKAGES = ("h2o", "scikit-learn", "pandas", "numpy")


def free_port() -> int:
    """A local port that is free, with the next one (H2O's internal port) free as well."""
    for _ in range(50):
        with socket.socket() as probe:
            probe.bind(("127.0.0.1", 0))
            port = probe.getsockname()[1]
        with socket.socket() as internal:
            try:
                internal.bind(("127.0.0.1", port + 1))
                return port
            except OSError:
                continue
    raise RuntimeError("no free pair of local ports for H2O")


def to_h2o(frame: pd.DataFrame, split: Split) -> h2o.H2OFrame:
    """An H2OFrame with categorical columns (and a classification target) typed as enums."""
    enums = [c for c in frame.columns if isinstance(frame[c].dtype, pd.CategoricalDtype)]
    if split.is_classification and split.target in frame.columns:
        enums.append(split.target)
    return h2o.H2OFrame(frame, column_types={c: "enum" for c in enums})


def fit_predict(run: Run) -> np.ndarray:
    split = run.split
    h2o.init(nthreads=2, port=free_port(), ice_root=str(run.workdir), log_dir=str(run.workdir / "h2o-logs"),
             verbose=False)
    try:
        h2o.no_progress()
        train = to_h2o(split.train_frame(), split)
        automl = H2OAutoML(max_runtime_secs=max(1, round(run.budget)), seed=0, nfolds=5,
                           sort_metric=SORT_METRIC[split.metric])
        automl.train(y=split.target, training_frame=train)
        run.notes["leader"] = automl.leader.model_id
        predicted = automl.leader.predict(to_h2o(split.X_test, split)).as_data_frame()
        if not split.is_classification:
            return predicted["predict"].to_numpy(dtype=float)
        return align_proba(predicted.iloc[:, 1:], train[split.target].levels()[0], split.labels)
    finally:
        cluster = h2o.cluster()
        if cluster is not None:
            cluster.shutdown(prompt=False)


if __name__ == "__main__":
    sys.exit(main("h2o", fit_predict, PACKAGES))
