"""The Pareto front of CV score, latency per row and model size, for a few public tables (issue 21):
one figure of score against latency, a panel per table, and the fronts as a markdown table.

    .venv/bin/python benchmarks/run.py run --budget 60 --systems tabpilot_pareto --datasets titanic,diamonds_cut,ames
    .venv/bin/python benchmarks/pareto.py --budget 60 --datasets titanic,diamonds_cut,ames --name pareto_60s

It reads run.py's cached results of the `tabpilot_pareto` adapter (`search.objective: pareto`), whose
notes hold every trial's CV score, latency and size and the front the run kept.
"""
from __future__ import annotations

import argparse
import json
from collections.abc import Sequence
from typing import Any

import run as runner
from peers import HIGHER_IS_BETTER

SYSTEM = "tabpilot_pareto"


def load(budget: float, datasets: Sequence[str]) -> dict[str, dict[str, Any]]:
    return {d: json.loads(runner.cache_file(budget, SYSTEM, d).read_text()) for d in datasets
            if runner.cache_file(budget, SYSTEM, d).exists()}


def figure(results: dict[str, dict[str, Any]], path: Any) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(1, len(results), figsize=(5 * len(results), 4.2), squeeze=False)
    for ax, (dataset, result) in zip(axes[0], results.items(), strict=True):
        points = [t for t in result["notes"]["trials"] if t[3] == "ok" and t[2] is not None and t[4] is not None]
        front = result["notes"].get("pareto_front", [])
        ax.scatter([t[4] for t in points], [t[2] for t in points], s=[10 + 30 * min(t[5] or 0, 5) for t in points],
                   color="C0", alpha=0.45, label="trial (area: size)")
        ax.scatter([p["latency_ms"] for p in front], [p["score"] for p in front], color="C3", zorder=3,
                   label="front of score, latency and size")
        # the front of these two alone, as a step line: the best score at each latency or less
        higher = HIGHER_IS_BETTER[result["metric"]]
        xs, ys = [], []
        for t in sorted(points, key=lambda t: t[4]):
            if not ys or (t[2] > ys[-1] if higher else t[2] < ys[-1]):
                xs.append(t[4])
                ys.append(t[2])
        ax.step(xs, ys, where="post", color="C3", alpha=0.7, label="front of score and latency")
        ax.set_xscale("log")
        ax.set(title=f"{dataset} ({result['metric']})", xlabel="ms per row (fold models, validation rows)",
               ylabel=f"CV {result['metric']}")
        ax.legend(fontsize=8)
    fig.tight_layout()
    fig.savefig(path, dpi=90)
    plt.close(fig)


def main(argv: Sequence[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--budget", type=float, default=60)
    parser.add_argument("--datasets", default="titanic,diamonds_cut,ames")
    parser.add_argument("--name", default="pareto_60s")
    args = parser.parse_args(argv)
    results = load(args.budget, args.datasets.split(","))
    out = runner.BENCH / "results"
    figure(results, out / f"{args.name}.png")
    lines = [f"# The Pareto front of CV score, latency and size at {runner.budget_tag(args.budget)} s", "",
             f"`benchmarks/run.py run --budget {runner.budget_tag(args.budget)} --systems {SYSTEM} --datasets "
             f"{args.datasets}`, then `benchmarks/pareto.py`; {runner.machine()}.",
             f"Figure: [{args.name}.png]({args.name}.png). Latency: the fold models' time on their validation rows,",
             "per row (noisy on small tables: the first trials pay the workers' warm-up); size: one fold model",
             "pickled. The front is three-dimensional: a point on it may be beaten on score and latency by a",
             "larger model.", "",
             "| dataset | trials | on the front | trial | family | CV score | ms per row | MB | the run's test score |",
             "|---|---|---|---|---|---|---|---|---|"]
    for dataset, result in results.items():
        front = result["notes"].get("pareto_front", [])
        ok = sum(t[3] == "ok" for t in result["notes"]["trials"])
        for i, p in enumerate(front):
            head = f"| {dataset} | {ok} | {len(front)} |" if i == 0 else "| | | |"
            tail = f" {result.get('score', 'error'):.4f} |" if i == 0 else " |"
            lines.append(f"{head} {p['trial']} | {p['family']} | {p['score']:.4f} | {p['latency_ms']:.4f} | "
                         f"{p['mb']:.3f} |{tail}")
    (out / f"{args.name}.md").write_text("\n".join(lines) + "\n")
    print("\n".join(lines))


if __name__ == "__main__":
    main()
