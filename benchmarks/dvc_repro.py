"""`dvc repro` of the demo params in a fresh clone, timed as a user runs it.

    .venv/bin/python benchmarks/dvc_repro.py [--repeats 2] [--out benchmarks/results/dvc_repro.md]

Each repeat clones the repository's HEAD into a new folder (no DVC cache, no MLflow store, no
outputs: what `git clone` gives) and runs `dvc repro` there with this interpreter's tools on PATH,
once through tabpilot's warm server (a machine that has run tabpilot before) and once with
`TABPILOT_WARM=0` (every stage a process importing everything itself). Per run: the wall of the
whole command, the search stage's window (first trial began to last finished, from the search's
trials.json), the test score and whether the model was registered. Target (issue 17): wall at most
the budget + 15 s.
"""
from __future__ import annotations

import argparse
import json
import subprocess
import sys
import time
from pathlib import Path

import yaml
from overhead import warm_up
from peers import emit
from peers.tabpilot import cli_env

REPO = Path(__file__).resolve().parents[1]
WORK = REPO / "benchmarks" / ".work" / "dvc_repro"
BIN = Path(sys.executable).parent


def _clone(folder: Path) -> None:
    subprocess.run(["git", "clone", "-q", str(REPO), str(folder)], check=True)


def _search_window(folder: Path) -> float | None:
    trials = [t for t in json.loads((folder / "artifacts" / "search" / "trials.json").read_text())
              if t.get("began") and t.get("finished")]
    return max(t["finished"] for t in trials) - min(t["began"] for t in trials) if trials else None


def run_once(folder: Path, warm: bool) -> dict[str, object]:
    _clone(folder)
    env = cli_env() | {"PATH": f"{BIN}:{cli_env().get('PATH', '')}"} | ({} if warm else {"TABPILOT_WARM": "0"})
    started = time.time()
    done = subprocess.run([str(BIN / "dvc"), "repro"], cwd=folder, env=env, capture_output=True, text=True,
                          stdin=subprocess.DEVNULL, check=False)
    wall = time.time() - started
    row: dict[str, object] = {"warm": warm, "wall_s": round(wall, 1), "exit": done.returncode}
    if done.returncode != 0:
        row["error"] = (done.stderr or done.stdout).strip().splitlines()[-1:]
        return row
    metrics = json.loads((folder / "reports" / "metrics.json").read_text())
    window = _search_window(folder)
    row |= {"search_s": round(window, 1) if window else None, "test_score": round(metrics["test_score"], 4),
            "registered": (folder / "reports" / "registration.json").exists()}
    return row


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=2)
    parser.add_argument("--out", type=Path, default=REPO / "benchmarks" / "results" / "dvc_repro.md")
    args = parser.parse_args()
    budget = yaml.safe_load((REPO / "params.yaml").read_text())["search"]["time_budget"]
    commit = subprocess.run(["git", "rev-parse", "--short", "HEAD"], cwd=REPO, capture_output=True, text=True,
                            check=True).stdout.strip()
    warm_up()
    rows = []
    for repeat in range(args.repeats):
        for warm in (True, False):
            folder = WORK / f"{commit}_{'warm' if warm else 'cold'}_{repeat}_{int(time.time())}"
            rows.append(run_once(folder, warm))
            print(rows[-1], flush=True)
    lines = [f"# `dvc repro` of the demo params ({budget} s budget) in a fresh clone of {commit}", "",
             f"Target: wall at most {budget + 15} s (budget + 15). Warm: through tabpilot's warm server; cold: "
             "`TABPILOT_WARM=0`, each of the eight stages importing everything itself.", "",
             "| run | warm server | wall s | search window s | test ROC AUC | registered |",
             "|---|---|---|---|---|---|"]
    for i, r in enumerate(rows):
        lines.append(f"| {i + 1} | {'yes' if r['warm'] else 'no'} | {r['wall_s']} | {r.get('search_s', '-')} | "
                     f"{r.get('test_score', r.get('error', '-'))} | {r.get('registered', False)} |")
    emit("\n".join(lines) + "\n", args.out)


if __name__ == "__main__":
    main()
