"""tabpilot on a large table as a user runs it (issue 22), beside a default HistGradientBoosting fitted on
the same rows: the seeded table of benchmarks/large_table.py, `tabpilot train` then `tabpilot predict`.

    .venv/bin/python benchmarks/scale.py --rows 1000000 --budget 300 [--predict-rows 1000000]
        [--systems tabpilot,hgb,flaml] [--hgb-rows 100000]

Measured: the train command's wall time and the peak RSS of its process tree (every worker included),
the trials by rung of rows (tabpilot.search.fidelity), the test AUC of `tabpilot predict` on the
held-out rows, predict's throughput on `--predict-rows` rows (the command's wall: reading, checking
the contract, predicting, writing), and the default HGB's fit time and AUC (scikit-learn's defaults,
text columns as pandas categories, those past its 255 bins left out, all cores; on a seeded sample of
`--hgb-rows` training rows where given), and FLAML at the same budget on the same rows (its adapter,
benchmarks/peers/flaml.py, in its own venv: wall and peak RSS of its process tree, test AUC). Results
go to results/scale_<rows>_<budget>s.json and .md; a run of some systems keeps the others' results.
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


def _timed(args: list[str], workdir: Path, name: str, limit: float,
           env: dict[str, str] | None = None) -> runner.Measured:
    measured = runner.monitor([str(TABPILOT), *args], workdir, cli_env() | (env or {}), workdir / f"{name}.log",
                              limit)
    if measured.returncode != 0:
        print(runner.tail(workdir / f"{name}.log", 30), file=sys.stderr)
        raise SystemExit(f"tabpilot {name} exited {measured.returncode}")
    return measured


def _hgb(train: Path, test: Path, rows: int | None) -> dict[str, float]:
    from sklearn.ensemble import HistGradientBoostingClassifier

    X, X_test = pd.read_parquet(train), pd.read_parquet(test)
    if rows:
        X = X.sample(rows, random_state=0)
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
    return {"hgb_rows": len(X), "hgb_fit_seconds": round(seconds, 1), "hgb_auc": round(float(auc), 4)}


def _flaml(train: Path, test: Path, rows: int, budget: float) -> dict[str, object]:
    """FLAML's adapter on the same rows, as CSV (its venv reads no Parquet)."""
    csv = [path.with_suffix(".csv") for path in (train, test)]
    for parquet, path in zip((train, test), csv, strict=True):
        if not path.exists():
            pd.read_parquet(parquet).to_csv(path, index=False)
    workdir = WORK / f"flaml_{rows}_{runner.budget_tag(budget)}s"
    runner.shutil.rmtree(workdir, ignore_errors=True)
    workdir.mkdir(parents=True)
    out = workdir / "result.json"
    command = [str(runner.python_for("flaml")), "-m", "peers.flaml", "--dataset", f"large_{rows}",
               "--files", *map(str, csv), "--target", TARGET, "--task", "binary", "--budget", str(budget),
               "--workdir", str(workdir), "--out", str(out)]
    measured = runner.monitor(command, workdir, runner.adapter_env("flaml"), workdir / "adapter.log",
                              runner.hard_timeout(budget))
    if not out.exists() or "score" not in (result := json.loads(out.read_text())):
        print(runner.tail(workdir / "adapter.log", 30), file=sys.stderr)
        raise SystemExit("FLAML gave no score")
    return {"flaml_wall_seconds": round(measured.seconds, 1),
            "flaml_fit_predict_seconds": result["fit_predict_seconds"],
            "flaml_peak_rss_mb": round(measured.peak_mem_mb), "flaml_auc": round(float(result["score"]), 4),
            "flaml_best": result["notes"].get("best_estimator"), "flaml_version": result["versions"].get("flaml")}


def measure(rows: int, budget: float, predict_rows: int, systems: set[str], hgb_rows: int | None,
            params: Path | None = None, tag: str = "") -> dict[str, object]:
    train, test = write(rows, WORK / "data")
    result: dict[str, object] = {"rows": rows, "budget": budget, "machine": runner.machine()}
    workdir, name = WORK / f"run_{rows}_{runner.budget_tag(budget)}s{tag}", f"scale_{rows}"
    if "tabpilot" in systems:
        result |= _train(train, rows, budget, workdir, name, params)
    if systems & {"tabpilot", "predict"}:
        result |= _predict(test, predict_rows, workdir, name)
    if "hgb" in systems:
        result |= _hgb(train, test, hgb_rows)
    if "flaml" in systems:
        result |= _flaml(train, test, rows, budget)
    return result


def _train(train: Path, rows: int, budget: float, workdir: Path, name: str, params: Path | None) -> dict[str, object]:
    runner.shutil.rmtree(workdir, ignore_errors=True)
    workdir.mkdir(parents=True)
    given = ["--params", str(params.resolve())] if params else []
    trained = _timed(["train", "--data", str(train), "--target", TARGET, "--time-budget", str(budget),
                      "--name", name, "--workdir", "run", *given], workdir, "train", budget * 3 + 120,
                     {"TABPILOT_WARM": "0"})  # the whole command in the measured tree (not a warm server's fork)
    trials = json.loads((workdir / "run" / "artifacts" / "search" / "trials.json").read_text())
    return {
        "train_rows": len(pd.read_parquet(train, columns=[TARGET])), "wall_seconds": round(trained.seconds, 1),
        "peak_rss_mb": round(trained.peak_mem_mb), "peak_by_process_mb": trained.peak_by_process[:8],
        "trials": len(trials),
        "trials_ok": sum(t["status"] == "ok" for t in trials),
        "by_rung": {str(k): sum(t.get("rung", 0) == k for t in trials if t["status"] == "ok")
                    for k in sorted({t.get("rung", 0) for t in trials})},
        "commit": git_commit(), **({"params": params.name} if params else {}),
    }


def _predict(test: Path, predict_rows: int, workdir: Path, name: str) -> dict[str, object]:
    """The registered model's test AUC, and predict's rows per second on `predict_rows` rows: through
    the warm server the train command left (as a user's next command runs), then cold (TABPILOT_WARM=0:
    the whole command in the measured process tree, so its peak RSS is predict's own)."""
    scored, features = workdir / "scored.parquet", workdir / "test_features.parquet"
    held_out = pd.read_parquet(test)
    truth = held_out.pop(TARGET) == "yes"
    held_out.to_parquet(features, index=False)  # as a user scores new rows: no label column
    model = ["--model", f"models:/{name}@champion"]
    predicted = _timed(["predict", *model, "--input", str(features), "--output", str(scored)], workdir,
                       "predict_test", 600)
    auc = roc_auc_score(truth, pd.read_parquet(scored, columns=["proba_yes"])["proba_yes"])
    many = workdir / "many.parquet"
    table = pd.concat([held_out] * -(-predict_rows // len(truth)), ignore_index=True).head(predict_rows)
    table.to_parquet(many, index=False)
    scored_many = ["--input", str(many), "--output", str(workdir / "many_scored.parquet")]
    warm = _timed(["predict", *model, *scored_many], workdir, "predict_many", 1200)
    cold = _timed(["predict", *model, *scored_many], workdir, "predict_many_cold", 1200, {"TABPILOT_WARM": "0"})
    return {"test_auc": round(float(auc), 4), "predict_test_seconds": round(predicted.seconds, 1),
            "predict_rows": predict_rows, "predict_rows_per_second": round(predict_rows / warm.seconds),
            "predict_cold_rows_per_second": round(predict_rows / cold.seconds),
            "predict_cold_peak_rss_mb": round(cold.peak_mem_mb), "predict_commit": git_commit()}


def report(result: dict[str, object], out: Path) -> None:
    """Write the results, over an earlier run's of the same rows and budget (the systems not run again)."""
    json_path = out.with_suffix(".json")
    if json_path.exists():
        result = {**json.loads(json_path.read_text()), **result}
    json_path.write_text(json.dumps(result, indent=2) + "\n")
    lines = [f"# tabpilot on {result['rows']:,} rows x 50 at {result['budget']:g} s", "",
             f"`benchmarks/scale.py --rows {result['rows']} --budget {result['budget']:g} --systems ...` (tabpilot's "
             f"rows, then hgb_ and flaml_ rows, each from its latest run); {result['machine']}.", "",
             "| measure | value |", "|---|---|"]
    lines += [f"| {k} | {v} |" for k, v in result.items() if k not in ("machine",)]
    out.with_suffix(".md").write_text("\n".join(lines) + "\n")
    print("\n".join(lines))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=1_000_000)
    parser.add_argument("--budget", type=float, default=300)
    parser.add_argument("--predict-rows", type=int, default=1_000_000)
    parser.add_argument("--systems", default="tabpilot,hgb",
                        help="of tabpilot (train, predict), predict (the last train's model again), hgb, flaml")
    parser.add_argument("--hgb-rows", type=int, help="fit HGB on a seeded sample of this many training rows")
    parser.add_argument("--params", type=Path, help="a params.yaml for tabpilot train (its settings are reported)")
    parser.add_argument("--tag", default="", help="a suffix for the results' and the run's names (with --params)")
    args = parser.parse_args()
    result = measure(args.rows, args.budget, args.predict_rows, set(args.systems.split(",")), args.hgb_rows,
                     args.params, args.tag)
    report(result, runner.BENCH / "results" / f"scale_{args.rows}_{runner.budget_tag(args.budget)}s{args.tag}")


if __name__ == "__main__":
    main()
