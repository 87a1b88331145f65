"""tabpilot on a large table as a user runs it (issue 22), beside a default HistGradientBoosting fitted on
the same rows: the seeded table of benchmarks/large_table.py, `tabpilot train` then `tabpilot predict`.

    .venv/bin/python benchmarks/scale.py --rows 1000000 --budget 300 [--predict-rows 1000000] [--no-hgb]

Measured: the train command's wall time and the peak RSS of its process tree (every worker included),
the trials by rung of rows (tabpilot.search.fidelity), the test AUC of `tabpilot predict` on the
held-out rows, predict's throughput on `--predict-rows` rows (the command's wall: reading, checking
the contract, predicting, writing), and the default HGB's fit time and AUC (scikit-learn's defaults,
text columns as pandas categories, those past its 255 bins left out, all cores). Results go to
results/scale_<rows>_<budget>s.json and .md.
"""
from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

import pandas as pd
import run as runner
from large_table import TARGET, write
from peers.tabpilot import TABPILOT, cli_env, git_commit
from sklearn.metrics import roc_auc_score

WORK = runner.WORK / "scale"


def _timed(args: list[str], workdir: Path, name: str, limit: float) -> runner.Measured:
    measured = runner.monitor([str(TABPILOT), *args], workdir, cli_env(), workdir / f"{name}.log", limit)
    if measured.returncode != 0:
        print(runner.tail(workdir / f"{name}.log", 30), file=sys.stderr)
        raise SystemExit(f"tabpilot {name} exited {measured.returncode}")
    return measured


def _hgb(train: Path, test: Path) -> dict[str, float]:
    from sklearn.ensemble import HistGradientBoostingClassifier

    X, X_test = pd.read_parquet(train), pd.read_parquet(test)
    y, y_test = X.pop(TARGET) == "yes", X_test.pop(TARGET) == "yes"
    wide = []
    for column in X.columns:
        if not pd.api.types.is_numeric_dtype(X[column]):
            levels = pd.CategoricalDtype(sorted(X[column].dropna().unique()))
            X[column], X_test[column] = X[column].astype(levels), X_test[column].astype(levels)
            if len(levels.categories) > 250:
                wide.append(column)
    started = time.time()
    model = HistGradientBoostingClassifier(categorical_features="from_dtype", random_state=0)
    model.fit(X.drop(columns=wide), y)
    seconds = time.time() - started
    auc = roc_auc_score(y_test, model.predict_proba(X_test.drop(columns=wide))[:, 1])
    return {"hgb_fit_seconds": round(seconds, 1), "hgb_auc": round(float(auc), 4)}


def measure(rows: int, budget: float, predict_rows: int, hgb: bool) -> dict[str, object]:
    train, test = write(rows, WORK / "data")
    workdir = WORK / f"run_{rows}_{runner.budget_tag(budget)}s"
    runner.shutil.rmtree(workdir, ignore_errors=True)
    workdir.mkdir(parents=True)
    name = f"scale_{rows}"
    trained = _timed(["train", "--data", str(train), "--target", TARGET, "--time-budget", str(budget),
                      "--name", name, "--workdir", "run"], workdir, "train", budget * 3 + 120)
    trials = json.loads((workdir / "run" / "artifacts" / "search" / "trials.json").read_text())
    scored, features = workdir / "scored.parquet", workdir / "test_features.parquet"
    held_out = pd.read_parquet(test)
    truth = held_out.pop(TARGET) == "yes"
    held_out.to_parquet(features, index=False)  # as a user scores new rows: no label column
    predicted = _timed(["predict", "--model", f"models:/{name}@champion", "--input", str(features),
                        "--output", str(scored)], workdir, "predict_test", 600)
    auc = roc_auc_score(truth, pd.read_parquet(scored, columns=["proba_yes"])["proba_yes"])
    many = workdir / "many.parquet"
    table = pd.concat([held_out] * -(-predict_rows // len(truth)), ignore_index=True).head(predict_rows)
    table.to_parquet(many, index=False)
    throughput = _timed(["predict", "--model", f"models:/{name}@champion", "--input", str(many),
                         "--output", str(workdir / "many_scored.parquet")], workdir, "predict_many", 1200)
    result: dict[str, object] = {
        "rows": rows, "train_rows": rows - len(truth), "budget": budget, "wall_seconds": round(trained.seconds, 1),
        "peak_rss_mb": round(trained.peak_mem_mb), "test_auc": round(float(auc), 4),
        "trials": len(trials), "trials_ok": sum(t["status"] == "ok" for t in trials),
        "by_rung": {str(k): sum(t.get("rung", 0) == k for t in trials if t["status"] == "ok")
                    for k in sorted({t.get("rung", 0) for t in trials})},
        "predict_test_seconds": round(predicted.seconds, 1), "predict_rows": predict_rows,
        "predict_rows_per_second": round(predict_rows / throughput.seconds),
        "predict_peak_rss_mb": round(throughput.peak_mem_mb), "machine": runner.machine(),
        "commit": git_commit(),
    }
    if hgb:
        result |= _hgb(train, test)
    return result


def report(result: dict[str, object], out: Path) -> None:
    out.with_suffix(".json").write_text(json.dumps(result, indent=2) + "\n")
    lines = [f"# tabpilot on {result['rows']:,} rows x 50 at {result['budget']:g} s", "",
             f"`benchmarks/scale.py --rows {result['rows']} --budget {result['budget']:g} --predict-rows "
             f"{result['predict_rows']}`; {result['machine']}.", "",
             "| measure | value |", "|---|---|"]
    lines += [f"| {k} | {v} |" for k, v in result.items() if k not in ("machine",)]
    out.with_suffix(".md").write_text("\n".join(lines) + "\n")
    print("\n".join(lines))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=1_000_000)
    parser.add_argument("--budget", type=float, default=300)
    parser.add_argument("--predict-rows", type=int, default=1_000_000)
    parser.add_argument("--no-hgb", action="store_true")
    args = parser.parse_args()
    result = measure(args.rows, args.budget, args.predict_rows, not args.no_hgb)
    report(result, runner.BENCH / "results" / f"scale_{args.rows}_{runner.budget_tag(args.budget)}s")


if __name__ == "__main__":
    main()
