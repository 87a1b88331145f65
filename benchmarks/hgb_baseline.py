"""A default HistGradientBoosting on a run's own split, beside the run's test score.

    python benchmarks/hgb_baseline.py runs/titanic [--out benchmarks/results/demo_vs_hgb.json]

The baseline follows the public suite's protocol (../shared/bench/README.md): scikit-learn's
defaults with `categorical_features="from_dtype"`, text columns as pandas categories.
"""
from __future__ import annotations

import argparse
import json
from pathlib import Path

import pandas as pd
from sklearn.ensemble import HistGradientBoostingClassifier, HistGradientBoostingRegressor

from tabpilot.core.artifacts import RunPaths
from tabpilot.core.metrics import resolve
from tabpilot.data.files import Schema
from tabpilot.search.evaluate import encode_target, predict


def _as_categories(train: pd.DataFrame, test: pd.DataFrame) -> tuple[pd.DataFrame, pd.DataFrame]:
    for column in train.columns:
        if not pd.api.types.is_numeric_dtype(train[column]):
            levels = pd.CategoricalDtype(sorted(train[column].dropna().unique()))
            train[column], test[column] = train[column].astype(levels), test[column].astype(levels)
    return train, test


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("run_dir", type=Path)
    parser.add_argument("--out", type=Path)
    args = parser.parse_args()
    paths = RunPaths(args.run_dir)
    schema = Schema.load(paths.schema)
    metrics = json.loads(paths.metrics.read_text())
    metric = resolve(metrics["metric"], schema.task)
    train, test = pd.read_parquet(paths.train), pd.read_parquet(paths.test)
    y_train = encode_target(train.pop(schema.target), schema)
    y_test = encode_target(test.pop(schema.target), schema)
    train, test = _as_categories(train, test)
    cls = HistGradientBoostingRegressor if schema.task == "regression" else HistGradientBoostingClassifier
    # More levels than HGB's 255 bins cannot be native categories: those columns are left out.
    wide = [c for c in train.columns if isinstance(train[c].dtype, pd.CategoricalDtype)
            and len(train[c].cat.categories) > 250]
    model = cls(categorical_features="from_dtype", random_state=0).fit(train.drop(columns=wide), y_train)
    baseline = metric.score(y_test, predict(model, test.drop(columns=wide), schema.task))
    result = {"run": str(args.run_dir), "metric": metric.name, "test_rows": len(test),
              "tabpilot": round(metrics["test_score"], 4), "default_hgb": round(baseline, 4),
              "members": [f"{m['family']} x{m['weight']}" for m in metrics["members"]],
              "dropped_high_cardinality_columns": wide}
    print(json.dumps(result, indent=2))
    if args.out:
        args.out.parent.mkdir(parents=True, exist_ok=True)
        args.out.write_text(json.dumps(result, indent=2) + "\n")


if __name__ == "__main__":
    main()
