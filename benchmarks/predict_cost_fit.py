"""The predict-cost estimates (tabpilot.search.predict_cost) beside measured times, per fold model of
kept runs, and the constants those times give each kind of model.

    .venv/bin/python benchmarks/predict_cost_fit.py benchmarks/.work/scale/run_1000000_300s ... \
        --out benchmarks/results/predict_cost_fit

Each RUN is a kept tabpilot run folder (its `run/artifacts/search/fold_models/*.pkl`, `trials.json` and
`run/data/prepared/train.parquet`): scale.py's runs, or `run.py run --keep-work`'s under
benchmarks/.work/runs. For the first fold model of every kept trial, its preprocessing makes the
matrix of 1,000 training rows, its model is compiled as serving compiles it (fast_models.compile_model),
then timed on one thread: one row alone (median of 50 calls) and the 1,000 rows (median of 5). Run it on
a quiet machine: the times are the point.
"""
from __future__ import annotations

import argparse
import json
import os
import sys
import time
import warnings
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

BENCH = Path(__file__).resolve().parent
sys.path.insert(0, str(BENCH.parent))

from tabpilot.core.artifacts import load_pickle  # noqa: E402
from tabpilot.ensemble.fast_models import compile_model  # noqa: E402
from tabpilot.search import predict_cost  # noqa: E402

ROWS = predict_cost.BATCH_ROWS


def median_ms(fast: Any, X: np.ndarray, repeats: int) -> float:
    times = []
    for _ in range(repeats):
        started = time.perf_counter()
        fast(X, 1)
        times.append(time.perf_counter() - started)
    return 1000 * float(np.median(times))


def first_model(pickled: Any) -> Any:
    models = getattr(pickled, "models", None) or (pickled if isinstance(pickled, list) else [pickled])
    return models[0]


def measure(run: Path) -> list[dict[str, Any]]:
    search = run / "run" / "artifacts" / "search"
    trials = {t["trial"]: t for t in json.loads((search / "trials.json").read_text())}
    frame = pd.read_parquet(run / "run" / "data" / "prepared" / "train.parquet")
    rows = []
    for path in sorted((search / "fold_models").glob("trial_*.pkl")):
        number = int(path.stem.split("_")[1])
        pipeline = first_model(load_pickle(path))
        X = frame[list(pipeline.feature_names_in_)].head(ROWS) if hasattr(pipeline, "feature_names_in_") \
            else frame.drop(columns=frame.columns[-1]).head(ROWS)
        matrix = pipeline[:-1].transform(X) if hasattr(pipeline, "steps") and len(pipeline.steps) > 1 else X
        matrix = np.asarray(matrix.to_numpy() if hasattr(matrix, "to_numpy") else matrix, dtype=float)
        model = pipeline.steps[-1][1] if hasattr(pipeline, "steps") else pipeline
        method = "predict_proba" if hasattr(model, "predict_proba") else "predict"
        fast = compile_model(model, method, matrix[:200], np.asarray(getattr(model, method)(matrix[:200]), float))
        if fast is None:
            continue
        fast(matrix, 1)  # warm: first calls allocate
        one, batch = median_ms(fast, matrix[:1], 50), median_ms(fast, matrix, 5)
        kind = predict_cost.unwrapped(model)
        trees = predict_cost._trees(kind)
        estimate = predict_cost.model_cost(model)
        record = trials[number]
        rows.append({"run": run.name, "trial": number, "family": record["family"], "train_rows": record.get("rows"),
                     "kind": trees.kind if trees else type(kind).__name__, "trees": trees.count if trees else None,
                     "levels": round(trees.levels, 1) if trees else None, "nodes": trees.nodes if trees else None,
                     "categorical": trees.categorical if trees else None,
                     "columns": matrix.shape[1],
                     "weights": sum(c.size for c in kind.coefs_) if hasattr(kind, "coefs_") else None,
                     "estimated_one_ms": round(estimate.one_ms, 3), "measured_one_ms": round(one, 3),
                     "estimated_batch_ms": round(estimate.batch_ms, 2), "measured_batch_ms": round(batch, 2),
                     "adapter": type(fast).__name__})
        print(f"{run.name} trial {number} {record['family']}: batch {estimate.batch_ms:.1f} est, {batch:.1f} ms "
              f"measured; one row {estimate.one_ms:.3f} est, {one:.3f}", flush=True)
    return rows


def spread(measured: np.ndarray, estimated: np.ndarray) -> str:
    ratio = measured / estimated
    return f"{np.median(ratio):.2f} ({np.quantile(ratio, 0.1):.2f}-{np.quantile(ratio, 0.9):.2f})"


def log_fit(X: np.ndarray, measured: np.ndarray) -> np.ndarray:
    """Non-negative c minimising the squared log ratio of X @ c to the measured times (a model 2x too
    slow counts as much as one 2x too fast)."""
    from scipy.optimize import least_squares

    found = least_squares(lambda c: np.log(X @ np.exp(c)) - np.log(measured), np.full(X.shape[1], np.log(1e-3)))
    return np.exp(found.x)


def fits(frame: pd.DataFrame) -> pd.DataFrame:
    """Per tree kind, fixed + a x levels + b x nodes (+ c x categorical columns for CatBoost) fitted to the
    measured 1,000-row times, beside predict_cost's constants; per MLP, fixed + c x weights. Measured /
    estimated as the median and the 10-90% range, with the constants when the models were measured
    (the CSV's estimates) and with the fitted ones."""
    out = []
    for kind, group in frame.dropna(subset=["levels"]).groupby("kind"):
        measured = group["measured_batch_ms"].to_numpy()
        columns = ["levels", "nodes", *(["categorical"] if kind == "catboost" else [])]
        X = np.column_stack([np.ones(len(group)), group[columns].fillna(0).to_numpy(float)])
        fitted = log_fit(X, measured)
        in_use = [*predict_cost.TREE_BATCH_MS[kind], *([predict_cost.CATBOOST_CATEGORICAL_MS] if kind == "catboost"
                                                       else [])]
        out.append({"kind": kind, "models": len(group),
                    "levels": f"{group['levels'].min():.0f}-{group['levels'].max():.0f}",
                    "ms fixed, per level, per node[, per categorical] in use": ", ".join(f"{v:.3g}" for v in in_use),
                    "fitted": ", ".join(f"{v:.3g}" for v in fitted),
                    "measured / estimated when measured": spread(measured, group["estimated_batch_ms"].to_numpy()),
                    "measured / fitted": spread(measured, X @ fitted)})
    mlps = frame.dropna(subset=["weights"])
    if len(mlps):
        measured = mlps["measured_batch_ms"].to_numpy()
        X = np.column_stack([np.ones(len(mlps)), mlps["weights"].to_numpy(float)])
        fitted = log_fit(X, measured)
        out.append({"kind": "mlp (per weight)", "models": len(mlps),
                    "levels": f"{mlps['weights'].min():.0f}-{mlps['weights'].max():.0f} weights",
                    "ms fixed, per level, per node[, per categorical] in use": ", ".join(
                        f"{v:.3g}" for v in predict_cost.MLP_MS[1]),
                    "fitted": ", ".join(f"{v:.3g}" for v in fitted),
                    "measured / estimated when measured": spread(measured, mlps["estimated_batch_ms"].to_numpy()),
                    "measured / fitted": spread(measured, X @ fitted)})
    return pd.DataFrame(out)


def main() -> None:
    warnings.simplefilter("ignore", UserWarning)  # models fitted on named columns, timed on arrays
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("runs", nargs="*", type=Path)
    parser.add_argument("--with", dest="earlier", type=Path, action="append", default=[],
                        help="an earlier CSV of this script whose models count too (not measured again)")
    parser.add_argument("--out", type=Path, required=True, help="writes OUT.csv and OUT.md")
    args = parser.parse_args()
    frame = pd.DataFrame([row for run in args.runs for row in measure(run)])
    args.out.parent.mkdir(parents=True, exist_ok=True)
    if len(frame):
        frame.to_csv(args.out.with_suffix(".csv"), index=False)
    earlier = [pd.read_csv(path) for path in args.earlier]
    frame = pd.concat([frame, *earlier], ignore_index=True)
    folders = sorted({os.path.relpath(r.parent.resolve(), BENCH.parent) for r in args.runs})
    text = [f"# Predict-cost estimates against measured times, {len(frame)} fold models", "",
            f"`benchmarks/predict_cost_fit.py` on {len(args.runs)} kept runs under {', '.join(folders) or '-'}"
            + "".join(f" with `--with {p}`" for p in args.earlier)
            + f" (per model: [{args.out.name}.csv]({args.out.name}.csv) and the CSVs named). "
            "Model alone (no preprocessing), one thread, 1,000 rows.", "",
            fits(frame).to_markdown(index=False)]
    args.out.with_suffix(".md").write_text("\n".join(text) + "\n")
    print(args.out.with_suffix(".md").read_text())


if __name__ == "__main__":
    main()
