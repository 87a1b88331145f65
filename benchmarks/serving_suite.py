"""`benchmarks/serving.py` on the model each public-suite table registered, from the runs that
`benchmarks/run.py run --keep-work` kept, and one table of the results against issue 18's targets.

    .venv/bin/python benchmarks/run.py run --budget 60 --systems tabpilot --keep-work
    .venv/bin/python benchmarks/serving_suite.py --budget 60 --out benchmarks/results/serving_suite_60s

or, for the models default settings register (run.py's runs also refit on all rows after testing),
from the newest quiet run per table that `benchmarks/overhead.py` kept at that budget:

    .venv/bin/python benchmarks/serving_suite.py --budget 60 --overhead --out ...

Each server runs in its run's folder (its MLflow store), serves `models:/bench_<table>@champion`,
gets rows of that table's training file, and answers the rows `tabpilot predict` scored in the
run (compared with its predictions). The registered test score is read from the run's report.
"""
from __future__ import annotations

import argparse
import json
import subprocess
import sys
from pathlib import Path

from peers.common import load_suite

BENCH = Path(__file__).resolve().parent
TARGETS = {"start": 5.0, "p50": 5.0, "p99": 20.0, "rows": 20_000}


def serve_one(table: str, run: Path, model: str, out: Path, load_seconds: float) -> dict:
    schema = json.loads((run / "run" / "data" / "raw" / "schema.json").read_text())
    name = f"serving_{table}"
    command = [sys.executable, str(BENCH / "serving.py"), "--model", model,
               "--data", str(run / "train.parquet"), "--target", schema["target"],
               "--predicted", str(run / "pred.parquet"), "--load-seconds", f"{load_seconds:g}",
               "--out", str(out), "--name", name]
    subprocess.run(command, cwd=run, check=True, capture_output=True, text=True)
    result = json.loads((out / f"{name}.json").read_text())
    metrics = json.loads((run / "run" / "reports" / "metrics.json").read_text())
    result |= {"table": table, "test_score": metrics["test_score"], "metric": metrics["metric"],
               "members": len(metrics["members"]), "pipelines": metrics["compiled"]["pipelines"]}
    (out / f"{name}.json").write_text(json.dumps(result, indent=2) + "\n")
    return result


def kept_runs(budget: float, runs: Path | None, overhead: bool) -> dict[str, tuple[Path, str]]:
    """{table: (its kept run's folder, the model URI it registered)}: run.py's runs, or overhead.py's
    newest quiet run per table at `budget` (folders `<table>_<budget>_quiet_<time>`)."""
    def done(p: Path) -> bool:
        return (p / "run" / "reports" / "metrics.json").exists() and (p / "pred.parquet").exists()

    if not overhead:
        runs = runs or BENCH / ".work" / "runs" / f"b{budget:g}" / "tabpilot"
        return {p.name: (p, f"models:/bench_{p.name}@champion") for p in sorted(runs.iterdir()) if done(p)}
    kept: dict[str, tuple[Path, str]] = {}
    for p in sorted((runs or BENCH / ".work" / "overhead").glob(f"*_{budget:g}_quiet_*"),
                    key=lambda p: int(p.name.rsplit("_", 1)[1])):
        if done(p):  # later runs of a table replace earlier ones
            table = p.name.rsplit("_", 3)[0]
            kept[table] = (p, f"models:/overhead_{table}@champion")
    return kept


def markdown(results: list[dict], budget: float, load_seconds: float, overhead: bool = False) -> str:
    source = ("default settings registered on each public-suite table (benchmarks/overhead.py's runs)" if overhead
              else "the public suite registered (benchmarks/run.py's runs)")
    lines = [f"# Serving the models {source} at {budget:g} s", "",
             "`benchmarks/serving_suite.py`: `tabpilot serve` per table, clients on the same machine; targets "
             f"(issue 18): start <= {TARGETS['start']:g} s, p50 <= {TARGETS['p50']:g} ms, p99 <= "
             f"{TARGETS['p99']:g} ms, >= {TARGETS['rows']:,} rows/s in 1,000-row batches, no failed request "
             f"under {results[0]['load']['clients'] if results and results[0]['load'] else 0} clients for "
             f"{load_seconds:g} s. Per-table details: serving_<table>.md.", "",
             "| table | members (pipelines) | test score (run's own split, metrics.json) | start s | p50 ms "
             "| p99 ms | rows/s "
             "| load: failed, p50, p99 ms "
             "| served vs predict | met |", "|---|---|---|---|---|---|---|---|---|---|"]
    for r in results:
        single, load, versus = r["single_row"], r["load"] or {}, r["versus_predict"] or {}
        met = (r["server_start_seconds"] <= TARGETS["start"] and single["p50_ms"] <= TARGETS["p50"]
               and single["p99_ms"] <= TARGETS["p99"] and r["batch_1000"]["rows_per_second"] >= TARGETS["rows"]
               and load.get("failed", 1) == 0 and versus.get("labels_equal")
               and versus.get("max_abs_difference", 1.0) <= 1e-6)
        lines.append(f"| {r['table']} | {r['members']} ({r['pipelines']}) | {r['metric']} {r['test_score']:.4f} | "
                     f"{r['server_start_seconds']} | {single['p50_ms']} | {single['p99_ms']} | "
                     f"{r['batch_1000']['rows_per_second']:,} | {load.get('failed')}, {load.get('p50_ms')}, "
                     f"{load.get('p99_ms')} | {versus.get('max_abs_difference', float('nan')):.1e} | "
                     f"{'yes' if met else 'NO'} |")
    return "\n".join(lines) + "\n"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--budget", type=float, required=True)
    parser.add_argument("--runs", type=Path, help="kept runs (default: benchmarks/.work/runs/b<budget>/tabpilot)")
    parser.add_argument("--datasets", help="comma-separated (default: every kept run)")
    parser.add_argument("--overhead", action="store_true", help="serve the runs benchmarks/overhead.py kept")
    parser.add_argument("--load-seconds", type=float, default=60.0)
    parser.add_argument("--out", type=Path, required=True, help="a folder")
    args = parser.parse_args()
    runs = kept_runs(args.budget, args.runs, args.overhead)
    tables = args.datasets.split(",") if args.datasets else sorted(runs)
    args.out.mkdir(parents=True, exist_ok=True)
    results = []
    for table in tables:
        folder, model = runs[table]
        results.append(serve_one(table, folder, model, args.out.resolve(), args.load_seconds))
        r = results[-1]
        print(f"{table}: p50 {r['single_row']['p50_ms']} ms, {r['batch_1000']['rows_per_second']:,} rows/s",
              flush=True)
    # The table covers every table served into this folder, this run's and earlier runs' (--datasets).
    order = list(load_suite().LOADERS)
    served = [json.loads(p.read_text()) for p in args.out.glob("serving_*.json")]
    served.sort(key=lambda r: order.index(r["table"]) if r["table"] in order else len(order))
    (args.out / "README.md").write_text(markdown(served, args.budget, args.load_seconds, args.overhead))
    print(f"wrote {args.out / 'README.md'}")


if __name__ == "__main__":
    main()
