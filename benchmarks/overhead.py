"""What a run spends on its own machinery: `tabpilot train` as a user runs it, per public-suite table
and budget, timed from the command's start.

    .venv/bin/python benchmarks/overhead.py --budgets 10,30,60 [--datasets a,b] [--load] [--warm]
        [--out benchmarks/results/overhead.csv]

Per run (a fresh folder: a new MLflow store; Prefect's home is shared, as a user's is, and the
`server` column says whether the run found tabpilot's local Prefect server running or started it):
- first_trial_s: command start to the first trial running in a worker (`began` in trials.json);
- search_share: the search window (first trial began to last trial finished) / budget;
- wall_s: the whole `tabpilot train` command; registered: exit 0 and a registration report;
- score: the protocol's test metric of `tabpilot predict`;
- warm server: whether tabpilot's warm server (tabpilot.warm) was listening when the run started
  (a machine's first command runs without it and starts it as it ends). `--warm-up` runs one cheap
  command first and waits for the server, so every row measures a machine that has run tabpilot.
Every setting is the default a user gets (run.py's tabpilot also refits on all rows after testing).
`--warm` runs each table again at the first budget in the same folder (one that has run before);
`--load` keeps both cores busy with two other processes during every run.
"""
from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import time
from pathlib import Path

import pandas as pd
from peers import emit
from peers.common import load_split, load_suite, score
from peers.tabpilot import TABPILOT, cli_env, read_predictions

from flows.server import connect, running_url
from tabpilot.launch import server_key, socket_path

REPO = Path(__file__).resolve().parents[1]
WORK = REPO / "benchmarks" / ".work" / "overhead"
BURN = "import time, sys\nend = time.time() + float(sys.argv[1])\nwhile time.time() < end:\n    pass\n"


def _burners(seconds: float) -> list[subprocess.Popen[bytes]]:
    """Two processes that keep both cores busy for at most `seconds` (bounded: they stop by themselves)."""
    return [subprocess.Popen([sys.executable, "-c", BURN, str(seconds)]) for _ in range(2)]


def run_once(dataset: str, budget: float, folder: Path, load: bool) -> dict[str, object]:
    split = load_split(dataset)
    folder.mkdir(parents=True, exist_ok=True)
    if not (folder / "train.parquet").exists():
        split.train_frame().to_parquet(folder / "train.parquet", index=False)
        split.X_test.to_parquet(folder / "test_features.parquet", index=False)
    os.environ["PREFECT_HOME"] = cli_env()["PREFECT_HOME"]
    server = "reused" if running_url() else "started"  # a machine's first command starts Prefect's server
    warm = socket_path(server_key(cli_env())).exists()  # and the warm server (tabpilot.warm) as it ends
    burners = _burners(budget + 120) if load else []
    started = time.time()
    try:
        done = subprocess.run([str(TABPILOT), "train", "--data", "train.parquet",
                               "--target", split.target, "--task", split.task, "--metric", split.metric,
                               "--time-budget", f"{budget:g}", "--seed", "0", "--name", f"overhead_{dataset}",
                               "--workdir", "run"], cwd=folder, env=cli_env(), capture_output=True, text=True,
                              stdin=subprocess.DEVNULL, check=False)
        wall = time.time() - started
    finally:
        for burner in burners:
            burner.kill()
    (folder / "train.log").write_text(done.stdout + done.stderr)  # the stage lines, to see where time went
    registered = done.returncode == 0 and (folder / "run" / "reports" / "registration.json").exists()
    row: dict[str, object] = {"dataset": dataset, "budget": budget, "load": load, "wall_s": round(wall, 1),
                              "registered": registered, "server": server, "warm": warm}
    trials_file = folder / "run" / "artifacts" / "search" / "trials.json"
    if trials_file.exists() and trials_file.stat().st_mtime > started:
        trials = json.loads(trials_file.read_text())
        began = [t["began"] for t in trials if t.get("began")]
        if began:
            row["first_trial_s"] = round(min(began) - started, 2)
            row["search_share"] = round((max(t["finished"] for t in trials) - min(began)) / budget, 3)
        row["trials"] = len(trials)
    if not row["registered"]:
        row["error"] = (done.stderr.strip().splitlines() or ["?"])[-1][:200]
        return row
    predicted = subprocess.run([str(TABPILOT), "predict", "--model", "run/artifacts/model", "--input",
                                "test_features.parquet", "--output", "pred.parquet", "--no-validate"], cwd=folder,
                               env=cli_env(), capture_output=True, text=True, check=False)
    if predicted.returncode == 0:
        row["metric"], row["score"] = split.metric, score(split, read_predictions(folder / "pred.parquet", split))
    return row


def warm_up(timeout: float = 120.0) -> None:
    """One cheap command, then wait until the warm server it starts as it ends is listening."""
    os.environ["PREFECT_HOME"] = cli_env()["PREFECT_HOME"]
    WORK.mkdir(parents=True, exist_ok=True)  # its MLflow store lands in the git-ignored work folder
    subprocess.run([str(TABPILOT), "models", "--name", "overhead_warm_up"], cwd=WORK, env=cli_env(),
                   capture_output=True, stdin=subprocess.DEVNULL, check=False)
    if "PREFECT_API_URL" not in os.environ:  # and Prefect's, which a user's first `train` starts
        connect()()
        os.environ.pop("PREFECT_API_URL", None)
    deadline = time.time() + timeout
    while not socket_path(server_key(cli_env())).exists() and time.time() < deadline:
        time.sleep(0.5)


def markdown(frame: pd.DataFrame) -> str:
    lines = ["# tabpilot train: start-up, search share and wall per table and budget", "",
             "| dataset | budget | load | folder | Prefect server | warm server | first trial s | search share "
             "| wall s | registered | trials | score |", "|---|---|---|---|---|---|---|---|---|---|---|---|"]
    nan = float("nan")
    for r in frame.itertuples():
        warm = {True: "yes", False: "no"}.get(getattr(r, "warm", None), "-")
        lines.append(f"| {r.dataset} | {r.budget:g} | {'busy' if r.load else 'quiet'} | {r.folder} | {r.server} | "
                     f"{warm} | "
                     f"{getattr(r, 'first_trial_s', nan):.2f} | {getattr(r, 'search_share', nan):.2f} | "
                     f"{r.wall_s:.1f} | {'yes' if r.registered else 'NO'} | {getattr(r, 'trials', 0):.0f} | "
                     f"{getattr(r, 'score', nan):.4f} |")
    return "\n".join(lines) + "\n"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--budgets", default="10,30,60")
    parser.add_argument("--datasets", default=",".join(load_suite().LOADERS))
    parser.add_argument("--load", action="store_true", help="two other processes keep both cores busy")
    parser.add_argument("--warm", action="store_true",
                        help="run each table again at the first budget, in the same folder")
    parser.add_argument("--warm-up", action="store_true", help="start the warm server before the first run")
    parser.add_argument("--out", type=Path, default=REPO / "benchmarks" / "results" / "overhead.csv")
    args = parser.parse_args()
    os.environ.pop("PREFECT_API_URL", None)
    if args.warm_up:
        warm_up()
    rows = []
    for dataset in args.datasets.split(","):
        for budget in [float(b) for b in args.budgets.split(",")]:
            folder = WORK / f"{dataset}_{budget:g}_{'load' if args.load else 'quiet'}_{time.time():.0f}"
            rows.append({**run_once(dataset, budget, folder, args.load), "folder": "fresh"})
            print(rows[-1], flush=True)
            if args.warm and budget == float(args.budgets.split(",")[0]):
                rows.append({**run_once(dataset, budget, folder, args.load), "folder": "warm"})
                print(rows[-1], flush=True)
    frame = pd.DataFrame(rows)
    if args.out.exists():  # several invocations (quiet, busy) add up to one table
        frame = pd.concat([pd.read_csv(args.out), frame], ignore_index=True)
    frame.to_csv(args.out, index=False)
    emit(markdown(frame), args.out.with_suffix(".md"))


if __name__ == "__main__":
    main()
