"""How often the neural families enter tabpilot's ensemble, and what searching them costs or gains
(issue 21): run.py's kept results of `tabpilot_neural` (the default families plus torch_mlp and
torch_darts) beside `tabpilot` at the same budget, with the suite's mean rank with and without them
against whatever peers were run at that budget.

    .venv/bin/python benchmarks/run.py run --budget 300 --systems tabpilot,tabpilot_neural
    .venv/bin/python benchmarks/neural_share.py --budget 300

Writes results/neural_share_<budget>s.md.
"""
from __future__ import annotations

import argparse
from typing import Any

import pandas as pd
import run as runner
from peers import HIGHER_IS_BETTER, suite_tasks

NEURAL = ("torch_mlp", "torch_darts")


def rows(results: list[dict[str, Any]]) -> list[str]:
    by = {(r["dataset"], r["system"]): r for r in results}
    lines = ["| dataset | metric | tabpilot | with neural | change | neural members (weight) | neural trials |",
             "|---|---|---|---|---|---|---|"]
    for dataset in suite_tasks():
        plain, neural = by.get((dataset, "tabpilot")), by.get((dataset, "tabpilot_neural"))
        if not plain or not neural or plain.get("score") is None or neural.get("score") is None:
            continue
        higher = HIGHER_IS_BETTER[plain["metric"]]
        change = (neural["score"] - plain["score"]) / abs(plain["score"]) * 100 * (1 if higher else -1)
        members = [f"{family} {weight:.2f}" for _, family, weight in neural["notes"].get("members", [])
                   if family in NEURAL]
        trials = sum(t[1] in NEURAL for t in neural["notes"].get("trials", []))
        total = len(neural["notes"].get("trials", []))
        lines.append(f"| {dataset} | {plain['metric']} | {plain['score']:.4f} | {neural['score']:.4f} | "
                     f"{change:+.2f}% | {', '.join(members) or 'none'} | {trials} of {total} |")
    return lines


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--budget", type=float, default=300)
    args = parser.parse_args()
    results = runner.cached_results(args.budget, None, None)
    table = rows(results)
    entered = sum("none" not in line for line in table[2:])
    frame = runner.results_frame(results)
    peers = frame[~frame.system.isin(("tabpilot", *runner.VARIANTS))]
    ranks = []
    for ours in ("tabpilot", "tabpilot_neural"):  # the peers run at this budget, and one of the two
        rank = runner.ranks(pd.concat([peers, frame[frame.system == ours]])).mean()
        ranks.append(", ".join(f"{s} {v:.2f}" for s, v in rank.sort_values().items()))
    tag = runner.budget_tag(args.budget)
    text = [f"# The neural families in tabpilot's search at {tag} s", "",
            f"`benchmarks/run.py run --budget {tag} --systems tabpilot,tabpilot_neural`, then "
            f"`benchmarks/neural_share.py --budget {tag}`; {runner.machine()}. `with neural`: search.families "
            "is the defaults plus torch_mlp and torch_darts. Change: positive is better.", "",
            *table, "",
            f"A neural member entered the ensemble on {entered} of {len(table) - 2} tables.", "",
            f"Mean rank against the peers run at {tag} s, without the neural families: {ranks[0]}.",
            f"With them (tabpilot_neural in tabpilot's place): {ranks[1]}.", ""]
    out = runner.BENCH / "results" / f"neural_share_{tag}s.md"
    out.write_text("\n".join(text))
    print("\n".join(text))


if __name__ == "__main__":
    main()
