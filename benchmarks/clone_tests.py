"""`make test` in a fresh clone of HEAD, as CI runs it, on a quiet machine or a busy one.

    .venv/bin/python benchmarks/clone_tests.py [--load] [--out benchmarks/results/clone_tests.csv]

The clone gets its own virtualenv from `make test` (the install is part of the wall). `--load` keeps
both cores busy with two other processes for the whole run (bounded: they stop by themselves after
two hours). Each invocation adds a row (commit, load, wall, exit, pytest's summary line, the failed tests) to
the CSV and rewrites the Markdown table beside it; the last run's output tail is kept in
benchmarks/.work/clone_tests.log. Issue 17 asks for three passes in a row, one busy.
"""
from __future__ import annotations

import argparse
import subprocess
import tempfile
import time
from pathlib import Path

import pandas as pd
from overhead import _burners
from peers import emit

REPO = Path(__file__).resolve().parents[1]
LOAD_SECONDS = 7200
LOG = REPO / "benchmarks" / ".work" / "clone_tests.log"


def run(load: bool) -> dict[str, object]:
    commit = subprocess.run(["git", "rev-parse", "--short", "HEAD"], cwd=REPO, capture_output=True, text=True,
                            check=True).stdout.strip()
    with tempfile.TemporaryDirectory(prefix="tabpilot-clone-") as tmp:
        clone = Path(tmp) / "tabpilot"
        subprocess.run(["git", "clone", "-q", str(REPO), str(clone)], check=True)
        burners = _burners(LOAD_SECONDS) if load else []
        started = time.time()
        try:
            done = subprocess.run(["make", "test"], cwd=clone, capture_output=True, text=True,
                                  stdin=subprocess.DEVNULL, check=False)
        finally:
            for burner in burners:
                burner.kill()
        wall = time.time() - started
    lines = [line for line in done.stdout.splitlines() if " passed" in line or " failed" in line or "error" in line]
    failures = [line.split(" - ")[0] for line in done.stdout.splitlines() if line.startswith(("FAILED ", "ERROR "))]
    LOG.write_text(done.stdout[-20000:] + done.stderr[-5000:])  # the failures' tracebacks, for the next look
    return {"commit": commit, "load": load, "wall_s": round(wall), "exit": done.returncode,
            "summary": (lines or done.stderr.strip().splitlines() or ["?"])[-1][:200],
            "failures": "; ".join(failures)[:500]}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--load", action="store_true", help="two other processes keep both cores busy")
    parser.add_argument("--out", type=Path, default=REPO / "benchmarks" / "results" / "clone_tests.csv")
    args = parser.parse_args()
    row = run(args.load)
    print(row, flush=True)
    frame = pd.DataFrame([row])
    if args.out.exists():
        frame = pd.concat([pd.read_csv(args.out), frame], ignore_index=True)
    frame.to_csv(args.out, index=False)
    lines = ["# `make test` in a fresh clone (install included), 2 cores", "",
             "| commit | both cores busy | wall s | exit | pytest | failed |", "|---|---|---|---|---|---|"]
    lines += [f"| {r.commit} | {'yes' if r.load else 'no'} | {r.wall_s} | {r.exit} | {r.summary} | "
              f"{getattr(r, 'failures', '') if isinstance(getattr(r, 'failures', ''), str) else ''} |"
              for r in frame.itertuples()]
    emit("\n".join(lines) + "\n", args.out.with_suffix(".md"))


if __name__ == "__main__":
    main()
