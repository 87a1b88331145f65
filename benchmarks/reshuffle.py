"""Do a run's best trials keep their scores on folds that did not choose them?

    python benchmarks/reshuffle.py RUN_DIR --budget 300 [--top 8] [--shuffles 3] [--out FILE.md]

RUN_DIR is a training run's directory (`runs/NAME`, or a kept benchmark run's
`benchmarks/.work/runs/b300/tabpilot/DATASET/run`); `--budget` is the budget it trained with (the
folds follow it). The search scores every trial on the same folds, so a long one can pick that
split's luck. This runs the `--top` best trials, and each other family's best, again on
`--shuffles` new k-fold shuffles of the same rows and reports their scores beside the search's.
Trials the search had already re-scored late (`late` > 0 in trials.json) are marked: their search
score is already a new shuffles' one.
"""
from __future__ import annotations

import argparse
import json
from pathlib import Path

import numpy as np
from peers import emit

from tabpilot.core.config import parse
from tabpilot.search.evaluate import cross_validate, load_workload
from tabpilot.search.records import ensemble_candidates

FIRST_SHUFFLE = 100  # far past any late repeat's seed offset


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("run_dir", type=Path)
    parser.add_argument("--budget", type=float, required=True)
    parser.add_argument("--top", type=int, default=8)
    parser.add_argument("--shuffles", type=int, default=3)
    parser.add_argument("--out", type=Path)
    args = parser.parse_args()
    cfg = parse({"search": {"time_budget": args.budget}})
    work = load_workload(str(args.run_dir), cfg.to_dict())
    trials = json.loads((args.run_dir / "artifacts" / "search" / "trials.json").read_text())
    ok = sorted((t for t in trials if t["status"] == "ok"), key=lambda t: (t["loss"], t["trial"]))
    chosen = set(ensemble_candidates([(t["trial"], t["family"], t["loss"]) for t in ok], args.top))
    rows = []
    for t in (t for t in ok if t["trial"] in chosen):
        candidate = {"family": t["family"], "params": t["params"],
                     **({"features": t["features"]} if t.get("features") else {})}
        scores = [cross_validate(work, {"candidate": candidate, "deadline": float("inf"),
                                        "repeat": FIRST_SHUFFLE + i})["score"] for i in range(args.shuffles)]
        rows.append((t, scores))
        print(f"trial {t['trial']} {t['family']}: search {t['score']:.4f}, new {np.mean(scores):.4f}", flush=True)
    lines = [f"# {args.run_dir}: the best trials on new shuffles\n",
             f"`python benchmarks/reshuffle.py {args.run_dir} --budget {args.budget:g} --top {args.top} "
             f"--shuffles {args.shuffles}`. {work.metric.name} of each trial's out-of-fold predictions; "
             f"the search's folds: {work.n_folds}-fold x {len(work.folds) // work.n_folds}; each new "
             f"shuffle: {work.n_folds}-fold once. Rows: the {args.top} best trials and each other "
             "family's best, best first.\n",
             "| trial | family | late | search | new shuffles | mean | change |",
             "|---|---|---|---|---|---|---|"]
    for t, scores in rows:
        mean = float(np.mean(scores))
        lines.append(f"| {t['trial']} | {t['family']} | {t.get('late', 0)} | {t['score']:.4f} | "
                     f"{', '.join(f'{s:.4f}' for s in scores)} | {mean:.4f} | {mean - t['score']:+.4f} |")
    emit("\n".join(lines) + "\n", args.out)


if __name__ == "__main__":
    main()
