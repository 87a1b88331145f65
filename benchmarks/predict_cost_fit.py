"""The predict-cost estimates (tabpilot.search.predict_cost) beside measured times, per fold model of
kept runs, and the per-level constants those times give each tree family.

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


def unwrapped(model: Any) -> Any:
    """The model predict_cost.model_cost costs: inside a target-standardising or categorical wrapper."""
    inner = getattr(model, "regressor_", None)
    if type(model).__name__ == "NativeCategorical":
        inner = model.estimator_
    return model if inner is None else unwrapped(inner)


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
        kind = unwrapped(model)
        trees = predict_cost._trees(kind)
        estimate = predict_cost.model_cost(model)
        record = trials[number]
        rows.append({"run": run.name, "trial": number, "family": record["family"], "train_rows": record.get("rows"),
                     "kind": trees[0] if trees else type(kind).__name__, "trees": trees[1] if trees else None,
                     "levels": round(trees[2], 1) if trees else None, "columns": matrix.shape[1],
                     "estimated_one_ms": round(estimate.one_ms, 3), "measured_one_ms": round(one, 3),
                     "estimated_batch_ms": round(estimate.batch_ms, 2), "measured_batch_ms": round(batch, 2),
                     "adapter": type(fast).__name__})
        print(f"{run.name} trial {number} {record['family']}: batch {estimate.batch_ms:.1f} est, {batch:.1f} ms "
              f"measured; one row {estimate.one_ms:.3f} est, {one:.3f}", flush=True)
    return rows


def per_level(frame: pd.DataFrame) -> pd.DataFrame:
    """Per tree kind: the constant that makes 0.1 + c x levels fit the measured 1,000-row times (least
    squares through the fixed 0.1), beside the one in use, and the spread of measured / estimated."""
    trees = frame.dropna(subset=["levels"])
    out = []
    for kind, group in trees.groupby("kind"):
        levels, measured = group["levels"].to_numpy(), group["measured_batch_ms"].to_numpy() - 0.1
        fitted = float(levels @ measured / (levels @ levels))
        ratio = group["measured_batch_ms"] / group["estimated_batch_ms"]
        out.append({"kind": kind, "models": len(group), "levels (min-max)": f"{levels.min():.0f}-{levels.max():.0f}",
                    "constant in use": predict_cost.TREE_LEVEL_MS.get(kind), "fitted": round(fitted, 5),
                    "measured / estimated (min, median, max)":
                        f"{ratio.min():.2f}, {ratio.median():.2f}, {ratio.max():.2f}"})
    return pd.DataFrame(out)


def main() -> None:
    warnings.simplefilter("ignore", UserWarning)  # models fitted on named columns, timed on arrays
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("runs", nargs="+", type=Path)
    parser.add_argument("--out", type=Path, required=True, help="writes OUT.csv and OUT.md")
    args = parser.parse_args()
    frame = pd.DataFrame([row for run in args.runs for row in measure(run)])
    args.out.parent.mkdir(parents=True, exist_ok=True)
    frame.to_csv(args.out.with_suffix(".csv"), index=False)
    summary = per_level(frame)
    text = [f"# Predict-cost estimates against measured times, {len(frame)} fold models of {len(args.runs)} runs", "",
            f"`benchmarks/predict_cost_fit.py {' '.join(str(r) for r in args.runs)}`; every model in "
            f"[{args.out.name}.csv]({args.out.name}.csv). Model alone (no preprocessing), one thread.", "",
            summary.to_markdown(index=False)]
    args.out.with_suffix(".md").write_text("\n".join(text) + "\n")
    print(args.out.with_suffix(".md").read_text())


if __name__ == "__main__":
    main()
