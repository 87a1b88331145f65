"""Which warm-start queue finds a good configuration in the fewest trials, on tables it never saw.

    python benchmarks/warm_start_queue.py [--portfolio tabpilot/meta/portfolio.json] [--out FILE.md]

Reads the loss matrix `tabpilot meta-learn` keeps in the portfolio (every candidate cross-validated
on every meta-learning table). Each table in turn is held out: the zero-shot greedy and the nearest
tables are taken from the others only, and a candidate only the held-out table's own search found
does not exist. Each queue is then walked on the held-out table, and the table's error after k trials
is its best rescaled loss among the first k (0: its best candidate, 1: its median or worse). A 60 s
search on a mid-sized table runs 15 to 25 trials (ames: 19, diamonds_cut: 16), all from the queue.

Trial costs are not modelled: a queue that front-loads slow families would look better here than
it runs.
"""
from __future__ import annotations

import argparse
import sys
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from peers import emit  # noqa: E402

from tabpilot.metalearn import zeroshot  # noqa: E402
from tabpilot.search import portfolio  # noqa: E402
from tabpilot.search.metafeatures import distance  # noqa: E402
from tabpilot.search.spaces import COST_ORDER  # noqa: E402

STEPS = (3, 6, 9, 12, 15, 18, 24)


def queues(t: int, entries: list[dict], losses: np.ndarray, candidates: list[dict],
           origins: list[set[int]]) -> dict[str, list[int]]:
    others = [r for r in range(len(entries)) if r != t]
    allowed = [j for j, found in enumerate(origins) if not found or found - {t}]
    errors = zeroshot.rescaled(losses[np.ix_(others, allowed)])
    greedy = [allowed[k] for k in zeroshot.greedy(errors, [], 24)]
    nearest = sorted(others, key=lambda r: (distance(entries[t]["meta"], entries[r]["meta"]), entries[r]["dataset"]))
    near: list[int] = []
    for rank in range(2):
        for r in nearest[:3]:
            configs = entries[r]["configs"]
            if rank < len(configs) and configs[rank] in candidates:
                near.append(candidates.index(configs[rank]))
    n_defaults = len(zeroshot.family_defaults())
    defaults = sorted(range(n_defaults), key=lambda j: COST_ORDER.index(candidates[j]["family"]))

    def unique(*parts: list[int]) -> list[int]:
        out: list[int] = []
        for j in (j for part in parts for j in part):
            if j not in out:
                out.append(j)
        return out

    return {
        "6 zero-shot, nearest tables' picks, defaults (tabpilot before)": unique(greedy[:6], near, defaults),
        "6 zero-shot, defaults, nearest tables' picks": unique(greedy[:6], defaults, near),
        "6 zero-shot, 3 nearest tables' picks, 6 zero-shot, defaults": unique(greedy[:6], near[:3], greedy[6:12],
                                                                             defaults),
        "9 zero-shot, defaults": unique(greedy[:9], defaults),
        "12 zero-shot, defaults": unique(greedy[:12], defaults),
        "12 zero-shot, nearest tables' picks, defaults (tabpilot now)": unique(greedy[:12], near, defaults),
        "12 zero-shot, defaults, nearest tables' picks": unique(greedy[:12], defaults, near),
        "24 zero-shot (the greedy may stop sooner)": greedy[:24],
        "defaults only": defaults,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--portfolio", type=Path, default=portfolio.DEFAULT_PATH)
    parser.add_argument("--out", type=Path)
    args = parser.parse_args()
    document = portfolio.load_document(args.portfolio)
    lines = ["# Warm-start queues, each meta-learning table held out in turn\n",
             "`python benchmarks/warm_start_queue.py`: mean over tables of the best rescaled loss after k trials "
             "(0: the table's best candidate, 1: its median). Trial costs are not modelled.\n"]
    for kind, chosen in document["zero_shot"].items():
        entries = [e for e in document["entries"] if portfolio.kind(e["task"]) == kind]
        losses = np.array([[np.nan if v is None else v for v in row] for row in chosen["losses"]])
        candidates, origins = zeroshot.candidates_of([e["configs"] for e in entries])
        assert losses.shape == (len(entries), len(candidates)), "the matrix does not match the entries"
        table: dict[str, np.ndarray] = {}
        for t in range(len(entries)):
            row = zeroshot.rescaled(losses[t:t + 1])[0]
            for name, queue in queues(t, entries, losses, candidates, origins).items():
                walked = [row[queue[:k]].min() if queue[:k] else 1.0 for k in STEPS]
                table.setdefault(name, np.zeros(len(STEPS)))
                table[name] += np.array(walked) / len(entries)
        lines += [f"\n## {kind}: {len(entries)} tables, {len(candidates)} candidates\n",
                  "| queue | " + " | ".join(f"k={k}" for k in STEPS) + " |",
                  "|---|" + "---|" * len(STEPS)]
        lines += [f"| {name} | " + " | ".join(f"{v:.3f}" for v in values) + " |" for name, values in table.items()]
    text = "\n".join(lines) + "\n"
    emit(text, args.out)


if __name__ == "__main__":
    main()
