"""Where a library's own predict overtakes Treelite's GTIL, per tree family of a compiled ensemble.

    .venv/bin/python benchmarks/native_rows.py --run runs/titanic --target survived

For each distinct tree model of the run's ensemble: ms per call through GTIL and through the
library's own predict, at batch sizes from 16 to 1,000 rows of the run's test split (mean of 5
calls, one thread). tabpilot.ensemble.fast_models.NATIVE_ROWS picks the crossover per family from this table.
"""
from __future__ import annotations

import argparse
import time
import warnings
from pathlib import Path

import pandas as pd

from tabpilot.core.artifacts import load_pickle
from tabpilot.data.files import normalise


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--run", type=Path, default=Path("runs/titanic"))
    parser.add_argument("--target", default="survived")
    parser.add_argument("--out", type=Path, default=Path(__file__).parent / "results" / "native_rows.md")
    args = parser.parse_args()
    warnings.simplefilter("ignore")
    compiled = load_pickle(args.run / "artifacts" / "ensemble.pkl").compiled_
    rows = normalise(pd.read_parquet(args.run / "data" / "prepared" / "test.parquet").drop(columns=[args.target]))
    lines = ["| rows | model | GTIL ms | own predict ms |", "|---|---|---|---|"]
    for n in (16, 64, 256, 1000):
        X = pd.concat([rows] * (n // len(rows) + 1)).head(n)
        for folds in compiled.members:
            step = folds[0]
            if type(step.predict).__name__ != "_Treelite":
                continue
            Z = compiled.preprocessors[step.preprocessor].transform(X)
            Z = Z if step.columns is None else Z[:, step.columns]
            own = step.predict.native
            timings = []
            for call in (step.predict.gtil, own):
                started = time.perf_counter()
                for _ in range(5):
                    call(Z, 1)
                timings.append((time.perf_counter() - started) / 5 * 1000)
            name = type(getattr(own, "model", own)).__name__.lstrip("_")
            lines.append(f"| {n} | {name} | {timings[0]:.2f} | {timings[1]:.2f} |")
    args.out.write_text(f"# GTIL against each library's own predict: {args.run}\n\n"
                        f"`python benchmarks/native_rows.py --run {args.run} --target {args.target}`, "
                        f"{time.strftime('%Y-%m-%d')}.\n\n" + "\n".join(lines) + "\n")
    print("\n".join(lines))


if __name__ == "__main__":
    main()
