"""tabpilot through its CLI, as a user runs it: `tabpilot train` on the protocol's training split,
then `tabpilot predict` on the test features. Run by the project's interpreter.

Both files keep the protocol's pandas categories (`tabpilot predict` converts input to the
training types). The run uses `ensemble.refit_full: true` (BENCH_PARAMS): the peers train their
final models on every row they are given, and so does tabpilot once its own held-out split has
scored the ensemble.

The work dir is the CLI's cwd, so MLflow's SQLite store (mlruns/) and the run (run/) land there;
MLFLOW_TRACKING_URI and PREFECT_API_URL are dropped so a benchmark never writes to a real server.
Prefect's home is shared by all runs (PREFECT_HOME below), as a user's project keeps `.prefect/`
between trainings: a fresh home costs ~7 s more start-up, for its database migrations, and only a
user's very first run pays that. The timed part is both commands, start-up included.
"""
from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pandas as pd

from peers.common import Run, Split, align_proba, main

REPO = Path(__file__).resolve().parents[2]
TABPILOT = Path(sys.executable).parent / "tabpilot"
PACKAGES = ("tabpilot", "scikit-learn", "xgboost-cpu", "xgboost", "hyperopt", "mlflow", "prefect",
            "pandas", "numpy")
STDERR_TAIL_LINES = 30
CATEGORIES_AS_STRINGS = False
BENCH_PARAMS = "ensemble:\n  refit_full: true\n"
PREFECT_HOME = REPO / "benchmarks" / ".work" / "prefect_home"


def cli_env() -> dict[str, str]:
    """The environment for the CLI: local stores only, nothing of the benchmark's PYTHONPATH."""
    env = {k: v for k, v in os.environ.items()
           if k not in ("PYTHONPATH", "MLFLOW_TRACKING_URI", "PREFECT_API_URL")}
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


def categories_as_strings(frame: pd.DataFrame) -> tuple[pd.DataFrame, list[str]]:
    """A copy of `frame` with its categorical columns as plain strings, and their names."""
    columns = [c for c in frame.columns if isinstance(frame[c].dtype, pd.CategoricalDtype)]
    return frame.astype({c: object for c in columns}), columns


def fit_predict(run: Run) -> np.ndarray:
    split = run.split
    split.train_frame().to_parquet(run.workdir / "train.parquet", index=False)
    test = split.X_test
    if CATEGORIES_AS_STRINGS:
        test, converted = categories_as_strings(test)
        if converted:
            run.notes["test_categoricals_as_strings"] = converted
    test.to_parquet(run.workdir / "test_features.parquet", index=False)
    run.notes["commit"] = git_commit()
    (run.workdir / "params.yaml").write_text(BENCH_PARAMS)
    tabpilot(["train", "--params", "params.yaml", "--data", "train.parquet", "--target", split.target,
              "--task", split.task,
              "--metric", split.metric, "--time-budget", f"{run.budget:g}", "--seed", "0",
              "--name", f"bench_{split.dataset}", "--workdir", "run"], run.workdir, "train")
    # --no-validate: the protocol's own test split needs no contract check, and the peers make none.
    tabpilot(["predict", "--model", "run/artifacts/model", "--input", "test_features.parquet",
              "--output", "pred.parquet", "--no-validate"], run.workdir, "predict")
    return read_predictions(run.workdir / "pred.parquet", split)


def read_predictions(path: Path, split: Split) -> np.ndarray:
    """`tabpilot predict`'s output as the protocol's predictions: values, or probabilities in label order."""
    scored = pd.read_parquet(path)
    if not split.is_classification:
        return scored["prediction"].to_numpy(dtype=float)
    columns = [c for c in scored.columns if c.startswith("proba_")]
    return align_proba(scored[columns], [c[len("proba_"):] for c in columns], split.labels)


if __name__ == "__main__":
    sys.exit(main("tabpilot", fit_predict, PACKAGES))
