"""In-process time of one /invocations request through the server's two readings of its JSON: the
pandas frame (`io.normalise`, the checks on Series) and the arrays of tabpilot.data.request_columns, for
1, 100 and 1,000 rows of each kept 60 s public-suite run's model (`run.py run --keep-work`).

    .venv/bin/python benchmarks/serving_paths.py --out benchmarks/results/serving_paths.md

Each request is parsed, checked against the contract and predicted (`Scorer.score`), median of 30
(10 at 1,000 rows); each model is compiled again first, by this code.
"""
from __future__ import annotations

import argparse
import json
import os
import time
from pathlib import Path

import numpy as np
import pandas as pd

BENCH = Path(__file__).resolve().parent
SIZES = (1, 100, 1000)


def body(rows: pd.DataFrame) -> bytes:
    clean = rows.astype(object).where(rows.notna(), None)
    return json.dumps({"dataframe_split": clean.to_dict(orient="split")}).encode()


def timed(run: Path) -> dict[str, float]:
    from tabpilot.core.config import parse as parse_config
    from tabpilot.data import request_columns
    from tabpilot.data.files import normalise
    from tabpilot.registry.serving import load, parse
    from tabpilot.registry.tracking import configure

    os.chdir(run)
    configure(parse_config({}).tracking, Path.cwd())
    scorer = load(f"models:/bench_{run.name}@champion")
    target = json.loads((run / "run/data/raw/schema.json").read_text())["target"]
    test = pd.read_parquet(run / "run/data/prepared/test.parquet").drop(columns=[target])
    scorer.model.compile(normalise(test.head(30)), 0)
    rows = pd.read_parquet(run / "train.parquet").drop(columns=[target])
    out, cap = {}, request_columns.MAX_ROWS
    for n in SIZES:
        payload = body(rows.sample(n, replace=True, random_state=0))
        for path, limit in (("pandas", 0), ("arrays", cap)):
            request_columns.MAX_ROWS = limit
            scorer.score(parse(payload, "application/json", scorer.contract))
            times = []
            for _ in range(30 if n < 1000 else 10):
                started = time.perf_counter()
                scorer.score(parse(payload, "application/json", scorer.contract))
                times.append(time.perf_counter() - started)
            out[f"{path} {n}"] = round(float(np.median(times)) * 1e3, 2)
    request_columns.MAX_ROWS = cap
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=Path, default=BENCH / ".work" / "runs" / "b60" / "tabpilot")
    parser.add_argument("--out", type=Path, default=BENCH / "results" / "serving_paths.md")
    args = parser.parse_args()
    out = args.out.resolve()
    runs = sorted(p.resolve() for p in args.runs.iterdir() if (p / "run" / "reports" / "metrics.json").exists())
    results = {run.name: timed(run) for run in runs}
    columns = [f"{path} {n}" for n in SIZES for path in ("pandas", "arrays")]
    lines = ["# One request in process: the pandas reading against the arrays (ms, median)", "",
             "`benchmarks/serving_paths.py`: parse, contract check and predict of a dataframe_split request, "
             "per kept 60 s suite model.", "", "| table | " + " | ".join(columns) + " |",
             "|---|" + "---|" * len(columns)]
    lines += [f"| {t} | " + " | ".join(f"{r[c]:.2f}" for c in columns) + " |" for t, r in results.items()]
    out.write_text("\n".join(lines) + "\n")
    print(out.read_text())


if __name__ == "__main__":
    main()
