"""Trials on a Dask cluster against the local pool (issue 22): the same tables in trial-count mode, the
same seed, once with the local worker processes and once on a cluster started as users start one
(`dask scheduler`, two `dask worker` processes of one thread, on the loopback: the data is shipped to
them, not read from this disk). The test scores should be equal; the wall times show the cluster's cost.

    .venv/bin/python benchmarks/dask_cluster.py [--datasets titanic,diamonds_cut] [--trials 16]

Results: results/dask_cluster.md and .csv.
"""
from __future__ import annotations

import argparse
import os
import shutil
import sys
import time
from pathlib import Path

import pandas as pd
import run as runner
from peers.common import align_proba, load_split, score

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))
from tests.helpers import dask_cluster  # noqa: E402  (how the tests start a cluster: the same commands)

WORK = runner.WORK / "dask_cluster"


def fit_score(dataset: str, trials: int, address: str | None, workdir: Path) -> dict[str, object]:
    from tabpilot import AutoML

    split = load_split(dataset)
    shutil.rmtree(workdir, ignore_errors=True)
    workdir.mkdir(parents=True)
    here = os.getcwd()
    os.chdir(workdir)
    try:
        started = time.time()
        model = AutoML(time_budget=3600, max_trials=trials, metric=split.metric, name=f"dask_{dataset}", seed=0,
                       workdir="run", data__task=split.task, compute__dask_address=address)
        model.fit(split.X_train, split.y_train.rename(split.target))
        seconds = time.time() - started
        if split.is_classification:
            proba = model.predict_proba(split.X_test, check=False)
            predictions = align_proba(proba, list(proba.columns), split.labels)
        else:
            predictions = model.predict(split.X_test, check=False).astype(float)
    finally:
        os.chdir(here)
    board = model.leaderboard()
    return {"dataset": dataset, "metric": split.metric, "pool": "dask" if address else "local",
            "test_score": score(split, predictions), "best_cv": float(board["cv_score"].iloc[0]),
            "trials": len(board), "seconds": round(seconds, 1)}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--datasets", default="titanic,diamonds_cut")
    parser.add_argument("--trials", type=int, default=16)
    args = parser.parse_args()
    rows = []
    for dataset in args.datasets.split(","):
        rows.append(fit_score(dataset, args.trials, None, WORK / "local" / dataset))
        with dask_cluster(2, WORK) as (address, _):
            rows.append(fit_score(dataset, args.trials, address, WORK / "dask" / dataset))
        print(rows[-2:], flush=True)
    frame = pd.DataFrame(rows)
    out = runner.BENCH / "results" / "dask_cluster"
    frame.to_csv(out.with_suffix(".csv"), index=False)
    wide = frame.pivot(index="dataset", columns="pool", values=["test_score", "seconds"])
    lines = ["# Trials on a 2-worker Dask cluster against the local pool", "",
             f"`benchmarks/dask_cluster.py --datasets {args.datasets} --trials {args.trials}` (trial-count mode, "
             f"seed 0); {runner.machine()}. The cluster: `dask scheduler` and two `dask worker --nthreads 1` "
             "on the loopback, the data shipped to them.", "",
             "| dataset | metric | test score, local | test score, Dask | equal | seconds, local | seconds, Dask |",
             "|---|---|---|---|---|---|---|"]
    for dataset in wide.index:
        local, dask = wide.loc[dataset, ("test_score", "local")], wide.loc[dataset, ("test_score", "dask")]
        metric = frame[frame.dataset == dataset]["metric"].iloc[0]
        lines.append(f"| {dataset} | {metric} | {local:.6f} | {dask:.6f} | {'yes' if local == dask else 'NO'} | "
                     f"{wide.loc[dataset, ('seconds', 'local')]} | {wide.loc[dataset, ('seconds', 'dask')]} |")
    out.with_suffix(".md").write_text("\n".join(lines) + "\n")
    print("\n".join(lines))


if __name__ == "__main__":
    main()
