"""One system's scores at two budgets, from two result CSVs written by `run.py`.

    python benchmarks/budgets.py benchmarks/results/tabpilot_60s.csv benchmarks/results/tabpilot_300s.csv \
        [--system tabpilot] [--out benchmarks/results/budgets_60s_300s.md]

Issue 3's target: at the longer budget, better on at least 8 of the 10 datasets.
"""
from __future__ import annotations

import argparse
from pathlib import Path

import pandas as pd
from peers import HIGHER_IS_BETTER, emit


def compare(short: pd.DataFrame, long: pd.DataFrame, system: str) -> pd.DataFrame:
    """Per dataset: the score at each budget, the relative change, and whether the longer one is better."""
    cols = ["dataset", "metric", "score", "wall_seconds"]
    a = short.loc[short["system"] == system, cols]
    b = long.loc[long["system"] == system, cols]
    both = a.merge(b, on=["dataset", "metric"], suffixes=("_short", "_long"))
    sign = both["metric"].map(lambda m: 1.0 if HIGHER_IS_BETTER[m] else -1.0)
    both["change_pct"] = sign * (both["score_long"] - both["score_short"]) / both["score_short"].abs() * 100
    both["better"] = both["change_pct"] > 0
    return both


def markdown(both: pd.DataFrame, short: str, long: str, system: str) -> str:
    lines = [f"# {system}: {short} against {long}", "",
             f"Better at the longer budget on {int(both['better'].sum())} of {len(both)} datasets "
             "(change in % of the shorter budget's score, positive = better).", "",
             f"| dataset | metric | {short} | {long} | change % | wall {short} | wall {long} |",
             "|---|---|---|---|---|---|---|"]
    for r in both.itertuples():
        lines.append(f"| {r.dataset} | {r.metric} | {r.score_short:.4f} | {r.score_long:.4f} | "
                     f"{r.change_pct:+.2f} | {r.wall_seconds_short:.1f} | {r.wall_seconds_long:.1f} |")
    return "\n".join(lines) + "\n"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("short", type=Path, help="run.py CSV at the shorter budget")
    parser.add_argument("long", type=Path, help="run.py CSV at the longer budget")
    parser.add_argument("--system", default="tabpilot")
    parser.add_argument("--out", type=Path, help="write the Markdown table here as well")
    args = parser.parse_args()
    both = compare(pd.read_csv(args.short), pd.read_csv(args.long), args.system)
    text = markdown(both, args.short.stem, args.long.stem, args.system)
    emit(text, args.out)


if __name__ == "__main__":
    main()
