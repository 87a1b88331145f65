"""tabpilot through its Python API, as the peers' adapters use theirs: `AutoML(...).fit(X_train,
y_train)` on the protocol's training split, then `predict_proba` on the test features. Run by the
project's interpreter; the same pipeline as `tabpilot train` (tabpilot.runner), in this process.

The run uses `ensemble.refit_full: true` (BENCH_SETTINGS): the peers train their final models on
every row they are given, and so does tabpilot once its own held-out split has scored the ensemble.
The work dir is the working folder, so MLflow's SQLite store (mlruns/) and the run (run/) land there;
MLFLOW_TRACKING_URI and PREFECT_API_URL are dropped so a benchmark never writes to a real server.
The budget clock starts when `fit` is called, the imports before it are in the adapter's wall.

The CLI helpers below (`cli_env`, `tabpilot`, `read_predictions`) serve the scripts that time the
command as a user runs it (overhead.py, commands.py, dvc_repro.py, latency_tradeoff.py).
"""
from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pandas as pd

from peers.common import Run, Split, align_proba, main

REPO = Path(__file__).resolve().parents[2]
TABPILOT = Path(sys.executable).parent / "tabpilot"
PACKAGES = ("tabpilot", "scikit-learn", "xgboost-cpu", "xgboost", "hyperopt", "mlflow", "prefect",
            "pandas", "numpy")
STDERR_TAIL_LINES = 30
BENCH_SETTINGS: dict[str, object] = {"ensemble__refit_full": True}
BENCH_SEED = 0
BENCH_PARAMS = "ensemble:\n  refit_full: true\n"  # the same, as a params file for the CLI's runs
PREFECT_HOME = REPO / "benchmarks" / ".work" / "prefect_home"


def cli_env() -> dict[str, str]:
    """The environment for the CLI: local stores only, nothing of the benchmark's PYTHONPATH but this
    checkout, so a git worktree's scripts time the worktree's code (the venv's editable install may
    point at another checkout)."""
    env = {k: v for k, v in os.environ.items()
           if k not in ("PYTHONPATH", "MLFLOW_TRACKING_URI", "PREFECT_API_URL")}
    env["PYTHONPATH"] = str(REPO)
    env["PREFECT_HOME"] = str(PREFECT_HOME)
    return env


def tabpilot(args: list[str], workdir: Path, log_name: str) -> None:
    """Run `tabpilot ARGS` in `workdir`, output to <log_name>.log; on failure print the
    stderr tail and raise with its last line."""
    log = workdir / f"{log_name}.log"
    with log.open("wb") as sink:
        done = subprocess.run([str(TABPILOT), *args], cwd=workdir, env=cli_env(),
                              stdout=sink, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL, check=False)
    if done.returncode != 0:
        lines = log.read_text(errors="replace").splitlines()
        print(f"--- tabpilot {log_name} exited {done.returncode}; last lines of {log}:", file=sys.stderr)
        print("\n".join(lines[-STDERR_TAIL_LINES:]), file=sys.stderr)
        last = next((line.strip() for line in reversed(lines) if line.strip()), "no output")
        raise RuntimeError(f"tabpilot {log_name} exited {done.returncode}: {last}")


def git_commit() -> str:
    """The repository's HEAD, with +dirty when tracked files outside benchmarks/ changed
    ('' outside git)."""
    def git(*args: str) -> str:
        return subprocess.run(["git", "-C", str(REPO), *args], capture_output=True, text=True,
                              check=False).stdout.strip()
    head = git("rev-parse", "--short", "HEAD")
    changed = git("status", "--porcelain", "--untracked-files=no", "--", ".", ":!benchmarks")
    return head + ("+dirty" if head and changed else "")


def fit_predict(run: Run) -> np.ndarray:
    """tabpilot's Python API, as FLAML's and AutoGluon's adapters use theirs."""
    from tabpilot import AutoML  # here: overhead.py and others import this module for its CLI helpers

    split = run.split
    run.notes["commit"] = git_commit()
    for name in ("MLFLOW_TRACKING_URI", "PREFECT_API_URL"):  # a benchmark never writes to a real server
        os.environ.pop(name, None)
    os.chdir(run.workdir)  # the API keeps its run and MLflow store in the working folder
    model = AutoML(time_budget=run.budget, metric=split.metric, name=f"bench_{split.dataset}", seed=BENCH_SEED,
                   workdir="run", data__task=split.task, **BENCH_SETTINGS)
    fitting = time.time()
    model.fit(split.X_train, split.y_train.rename(split.target))
    run.notes["trials"] = trial_times(model, fitting)
    board = model.leaderboard()
    run.notes["members"] = [[int(r.trial), r.family, float(r.ensemble_weight)]
                            for r in board[board.ensemble_weight > 0].itertuples()]
    front = model.run_dir_ / "reports" / "pareto.json"
    if front.exists():
        run.notes["pareto_front"] = json.loads(front.read_text())
    # check=False: the protocol's own test split needs no contract check, and the peers make none.
    if not split.is_classification:
        return model.predict(split.X_test, check=False).astype(float)
    proba = model.predict_proba(split.X_test, check=False)
    return align_proba(proba, list(proba.columns), split.labels)


def trial_times(model: object, since: float) -> list[list[object]]:
    """[seconds from `since` to the trial's end, family, CV score or None, status, ms per row, MB]
    per trial, in the order they ended: the search's anytime curve (benchmarks/strategies.py) and its
    points of score, latency and size (benchmarks/pareto.py)."""
    from tabpilot.core.artifacts import RunPaths, read_json

    trials = read_json(RunPaths(model.run_dir_).trials)  # type: ignore[attr-defined]
    rows = [[round(t["finished"] - since, 2), t["family"], t.get("score"), t["status"], t.get("latency_ms"),
             t.get("model_mb")] for t in trials]
    return sorted(rows, key=lambda row: row[0])  # type: ignore[arg-type, return-value]


def read_predictions(path: Path, split: Split) -> np.ndarray:
    """`tabpilot predict`'s output as the protocol's predictions: values, or probabilities in label order."""
    scored = pd.read_parquet(path)
    if not split.is_classification:
        return scored["prediction"].to_numpy(dtype=float)
    columns = [c for c in scored.columns if c.startswith("proba_")]
    return align_proba(scored[columns], [c[len("proba_"):] for c in columns], split.labels)


if __name__ == "__main__":
    sys.exit(main("tabpilot", fit_predict, PACKAGES))
