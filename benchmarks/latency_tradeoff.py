"""Test score against prediction latency at several `ensemble.max_predict_ms` / `max_batch_ms`
settings, on the same searches: the ensemble stage runs again, once per setting, on a copy of each
run that `benchmarks/run.py run --keep-work` kept, so the settings differ in nothing but the limit.

    .venv/bin/python benchmarks/run.py run --budget 60 --systems tabpilot --keep-work
    .venv/bin/python benchmarks/latency_tradeoff.py --budget 60 --out benchmarks/results/latency_tradeoff_60s

Each setting is `name=one_row_ms/rows_1000_ms` (`none` for no limit). The score is the suite's metric
on the suite's held-out rows (as `run.py` scores them), predicted by the new ensemble; the latency
is what the ensemble stage measured and estimated (metrics.json's `predict_cost`). Runs kept by an
older tabpilot lack the trials' cost estimates: they are computed here from the kept fold models.
"""
from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import pandas as pd

BENCH = Path(__file__).resolve().parent
sys.path.insert(0, str(BENCH))

from peers.common import load_split, score  # noqa: E402
from peers.tabpilot import BENCH_PARAMS  # noqa: E402

DEFAULT_SETTINGS = "none=none/none,default=3/30,tight=1/10"


def parse_settings(text: str) -> dict[str, tuple[float | None, float | None]]:
    settings = {}
    for item in text.split(","):
        name, _, limits = item.partition("=")
        one, _, batch = limits.partition("/")
        settings[name] = tuple(None if v == "none" else float(v) for v in (one, batch))
    return settings  # type: ignore[return-value]


def add_costs(run: Path) -> None:
    """Give the trials of a run kept by an older tabpilot their cost estimates, from fold models."""
    from tabpilot.core.artifacts import RunPaths, load_pickle, read_json, write_json
    from tabpilot.search.predict_cost import describe

    paths = RunPaths(run)
    trials = read_json(paths.trials)
    for record in trials:
        if record.get("predict_cost") is None and paths.fold_models_of(record["trial"]).exists():
            record["predict_cost"] = describe(load_pickle(paths.fold_models_of(record["trial"]))[0])
    write_json(paths.trials, trials)


def one_setting(kept: Path, scratch: Path, budget: float, limits: tuple[float | None, float | None],
                keep: bool = False) -> dict[str, Any]:
    from tabpilot.core import config
    from tabpilot.core.artifacts import RunPaths, load_pickle, read_json, write_json
    from tabpilot.data.files import normalise
    from tabpilot.registry import tracking
    from tabpilot.training.ensemble_stage import ensemble

    shutil.rmtree(scratch, ignore_errors=True)
    shutil.copytree(kept, scratch, ignore=shutil.ignore_patterns("model"))
    add_costs(scratch / "run")
    table = kept.name
    result = json.loads((kept / "result.json").read_text())
    (scratch / "params.yaml").write_text(BENCH_PARAMS)
    raw = config.load(scratch / "params.yaml").with_overrides({
        "data.path": str(scratch / "train.parquet"), "search.metric": result["metric"],
        "search.time_budget": budget, "seed": 0, "register.name": f"bench_{table}"}).to_dict()
    raw["ensemble"].update(max_predict_ms=limits[0], max_batch_ms=limits[1])  # None: no limit
    cfg = config.parse(raw)
    here = Path.cwd()
    os.chdir(scratch)
    try:
        tracking.configure(cfg.tracking, Path.cwd())
        # A run of its own per setting: MLflow refuses to change the kept run's logged params.
        info_path = RunPaths(Path("run")).run_info
        info = read_json(info_path)
        info["run_id"] = tracking.start_run(info["experiment"], "latency-tradeoff", {})
        write_json(info_path, info)
        started = time.time()
        out = ensemble(cfg, RunPaths(Path("run")), started)
        seconds = time.time() - started
        model = load_pickle(RunPaths(Path("run")).ensemble)
        metrics = read_json(RunPaths(Path("run")).metrics)
    finally:
        os.chdir(here)
    split = load_split(table)
    features = normalise(pd.read_parquet(scratch / "test_features.parquet"))
    frame = model.predict_frame(features)
    if split.is_classification:
        columns = [c for c in frame.columns if c.startswith("proba_")]
        from peers.common import align_proba
        predictions = align_proba(frame[columns], [c[len("proba_"):] for c in columns], split.labels)
    else:
        predictions = frame["prediction"].to_numpy(dtype=float)
    if not keep:
        shutil.rmtree(scratch, ignore_errors=True)
    cost = metrics["predict_cost"]
    return {"dataset": table, "metric": split.metric, "score": score(split, predictions),
            "members": out["members"], "pipelines": metrics["compiled"]["pipelines"],
            "method": out["method"], "ensemble_cv_score": out["ensemble_cv_score"],
            "estimated_one_ms": cost["estimated"]["one_row_ms"], "estimated_1000_ms": cost["estimated"]["rows_1000_ms"],
            "measured_one_ms": cost["measured"]["one_row_ms"], "measured_1000_ms": cost["measured"]["rows_1000_ms"],
            "stage_seconds": round(seconds, 1)}


def markdown(frame: pd.DataFrame, settings: dict[str, Any], budget: float) -> str:
    lines = [f"# Test score against prediction latency, {budget:g} s searches", "",
             "Same search per table; the ensemble stage run again per setting "
             "(`benchmarks/latency_tradeoff.py`). Limits: " + ", ".join(
                 f"{n} = {'none' if o is None else o} ms one row / {'none' if b is None else b} ms "
                 "for 1,000 rows" for n, (o, b) in settings.items()) + ".",
             "Measured ms are the compiled ensemble in-process on one core (HTTP adds the server's share).", "",
             "| dataset | metric | setting | score | members | pipelines | est. 1 row ms | meas. 1 row ms "
             "| est. 1,000 ms | meas. 1,000 ms |",
             "|---|---|---|---|---|---|---|---|---|---|"]
    for _, r in frame.iterrows():
        lines.append(f"| {r.dataset} | {r.metric} | {r.setting} | {r.score:.4f} | {r.members} | {r.pipelines} | "
                     f"{r.estimated_one_ms:.2f} | {r.measured_one_ms:.2f} | {r.estimated_1000_ms:.1f} | "
                     f"{r.measured_1000_ms:.1f} |")
    return "\n".join(lines) + "\n"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--budget", type=float, required=True)
    parser.add_argument("--runs", type=Path, help="kept runs (default: benchmarks/.work/runs/b<budget>/tabpilot)")
    parser.add_argument("--settings", default=DEFAULT_SETTINGS)
    parser.add_argument("--datasets", help="comma-separated (default: every kept run)")
    parser.add_argument("--out", type=Path, required=True, help="<out>.csv and <out>.md")
    parser.add_argument("--one", help="TABLE:SETTING only, in this process")
    parser.add_argument("--keep", action="store_true", help="with --one: keep its copy under benchmarks/.work/tradeoff")
    args = parser.parse_args()
    runs = args.runs or BENCH / ".work" / "runs" / f"b{args.budget:g}" / "tabpilot"
    settings = parse_settings(args.settings)
    tables = args.datasets.split(",") if args.datasets else sorted(
        p.name for p in runs.iterdir() if (p / "run").is_dir())
    if args.one:  # one table at one setting, in a process of its own (MLflow keeps its store open)
        table, name = args.one.split(":")
        row = one_setting(runs / table, BENCH / ".work" / "tradeoff" / table, args.budget, settings[name], args.keep)
        print("RESULT " + json.dumps({"setting": name, **row}), flush=True)
        return
    rows = []
    for table in tables:
        for name in settings:
            done = subprocess.run([sys.executable, __file__, "--budget", f"{args.budget:g}", "--runs", str(runs),
                                   "--settings", args.settings, "--out", str(args.out), "--one", f"{table}:{name}"],
                                  capture_output=True, text=True, check=False)
            found = [line for line in done.stdout.splitlines() if line.startswith("RESULT ")]
            if not found:
                print(f"{table} {name} failed:\n{done.stderr[-3000:]}", file=sys.stderr)
                continue
            rows.append(json.loads(found[-1][len("RESULT "):]))
            print(json.dumps(rows[-1]), flush=True)
    frame = pd.DataFrame(rows)
    args.out.parent.mkdir(parents=True, exist_ok=True)
    frame.to_csv(args.out.with_suffix(".csv"), index=False)
    args.out.with_suffix(".md").write_text(markdown(frame, settings, args.budget))
    print(f"wrote {args.out.with_suffix('.md')}")


if __name__ == "__main__":
    main()
