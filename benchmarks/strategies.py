"""Each search strategy at equal budget on the public suite (issue 21): the test score table with the
spread over seeds, the mean rank per strategy, and the anytime curves (best CV score so far against
time since `fit` began), one PNG per table.

    .venv/bin/python benchmarks/strategies.py run --budget 60 --seeds 0,1 [--cases tpe,gp] [--datasets titanic]
    .venv/bin/python benchmarks/strategies.py report --budget 60 --name strategies_60s

`--preset neural` runs the neural family's variants instead: its architecture searched by TPE, by
regularized evolution and by DARTS, and scikit-learn's MLP as it is searched today, each alone.

Each run is the tabpilot adapter (benchmarks/peers/tabpilot_strategy.py: the same protocol, split and
settings as `run.py`'s tabpilot) with `search.strategy` and the seed set; the seed changes the CV folds,
the sampling and the strategies' own randomness, not the protocol's split. Within a table every
strategy runs before the next table, so a slower hour of the machine falls on all of them alike.
Results are kept per run under results/raw/strategies (`run` skips cached ones: a long run can be resumed).
"""
from __future__ import annotations

import argparse
import json
import os
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import pandas as pd
import run as runner
from peers import HIGHER_IS_BETTER, suite_tasks

# A case: (search.strategy, search.families or None for the defaults)
CASES: dict[str, tuple[str, str | None]] = {
    **{s: (s, None) for s in ("tpe", "random", "anneal", "grid", "gp", "evolution")},
    "torch_tpe": ("tpe", "torch_mlp"), "torch_evolution": ("evolution", "torch_mlp"),
    "torch_darts": ("tpe", "torch_darts"), "sklearn_mlp": ("tpe", "mlp"),
}
# The lines of the anytime plots and the columns of the tables, in this order
PRESETS = {"strategies": ("tpe", "random", "anneal", "grid", "gp", "evolution"),
           "neural": ("torch_tpe", "torch_evolution", "torch_darts", "sklearn_mlp")}
STRATEGIES = tuple(CASES)
SYSTEM = "tabpilot_strategy"
CACHE = runner.RAW / "strategies"


def cache_file(budget: float, strategy: str, seed: int, dataset: str) -> Path:
    return CACHE / f"b{runner.budget_tag(budget)}" / f"{strategy}_s{seed}" / f"{dataset}.json"


def run_case(case: str, seed: int, dataset: str, budget: float) -> dict[str, Any]:
    """One tabpilot run as run.py runs it, measured, cached and returned."""
    strategy, families = CASES[case]
    workdir = runner.WORK / "runs" / "strategies" / f"{case}_s{seed}" / dataset
    runner.shutil.rmtree(workdir, ignore_errors=True)
    workdir.mkdir(parents=True)
    out = workdir / "result.json"
    command = [str(runner.PROJECT_PYTHON), "-m", f"peers.{SYSTEM}", "--dataset", dataset, "--budget", str(budget),
               "--workdir", str(workdir), "--out", str(out)]
    env = runner.adapter_env(SYSTEM) | {"TABPILOT_BENCH_STRATEGY": strategy, "TABPILOT_BENCH_SEED": str(seed),
                                        "TABPILOT_BENCH_FAMILIES": families or ""}
    measured = runner.monitor(command, workdir, env, workdir / "adapter.log", runner.hard_timeout(budget))
    result = runner.read_result(out, SYSTEM, dataset, measured, budget, workdir / "adapter.log")
    result.update(strategy=case, seed=seed, peak_mem_mb=round(measured.peak_mem_mb, 1),
                  wall_seconds=result.get("fit_predict_seconds", round(measured.seconds, 2)),
                  load_avg_1m=round(os.getloadavg()[0], 2))
    path = cache_file(budget, case, seed, dataset)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(result, indent=2, default=str) + "\n")
    if "error" in result:
        print(runner.tail(workdir / "adapter.log", 25))
    runner.shutil.rmtree(workdir, ignore_errors=True)
    return result


def run(budget: float, seeds: Sequence[int], cases: Sequence[str], datasets: Sequence[str]) -> None:
    for seed in seeds:
        for dataset in datasets:
            for strategy in cases:
                if cache_file(budget, strategy, seed, dataset).exists():
                    continue
                result = run_case(strategy, seed, dataset, budget)
                trials = len(result.get("notes", {}).get("trials", []))
                print(f"{dataset:14s} {strategy:9s} seed {seed}: score={result.get('score', 'ERROR')} "
                      f"wall={result['wall_seconds']}s trials={trials}", flush=True)


def load(budget: float, cases: Sequence[str], scores: Path | None = None) -> list[dict[str, Any]]:
    """The kept runs, plus the rows of an earlier report's CSV (`scores`) for runs not kept: their
    scores count in the tables, they draw no curve (runs made before results/raw was kept)."""
    kept = [json.loads(p.read_text()) for case in cases
            for p in sorted((CACHE / f"b{runner.budget_tag(budget)}").glob(f"{case}_s*/*.json"))]
    if scores is None:
        return kept
    have = {(r["strategy"], r["seed"], r["dataset"]) for r in kept}
    rows = pd.read_csv(scores).replace({float("nan"): None}).to_dict("records")
    return kept + [row | {"notes": {}} for row in rows
                   if row["strategy"] in cases and (row["strategy"], row["seed"], row["dataset"]) not in have]


def curve(trials: list[list[Any]], higher: bool) -> tuple[list[float], list[float]]:
    """(seconds, best CV score so far) at each trial that improved it."""
    xs: list[float] = []
    ys: list[float] = []
    for seconds, _family, score, status, *_ in trials:
        if status != "ok" or score is None:
            continue
        if not ys or (score > ys[-1] if higher else score < ys[-1]):
            xs.append(seconds)
            ys.append(score)
    return xs, ys


def plot_curves(results: list[dict[str, Any]], budget: float, folder: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    folder.mkdir(parents=True, exist_ok=True)
    colours = dict(zip(STRATEGIES, plt.get_cmap("tab10").colors, strict=False))
    for dataset in sorted({r["dataset"] for r in results}):
        fig, ax = plt.subplots(figsize=(7, 4.2))
        for r in sorted((r for r in results if r["dataset"] == dataset and "score" in r),
                        key=lambda r: (STRATEGIES.index(r["strategy"]), r["seed"])):
            xs, ys = curve(r["notes"].get("trials", []), HIGHER_IS_BETTER[r["metric"]])
            if xs:
                ax.step(xs + [budget], ys + [ys[-1]], where="post", color=colours[r["strategy"]],
                        linestyle="-" if r["seed"] == 0 else "--", alpha=0.85,
                        label=r["strategy"] if r["seed"] == 0 else None)
        metric = next(r["metric"] for r in results if r["dataset"] == dataset)
        ax.set(title=f"{dataset}: best CV {metric} so far ({runner.budget_tag(budget)} s; dashed: seed 1)",
               xlabel="seconds since fit began", ylabel=f"CV {metric}")
        ax.legend(fontsize=8, ncol=3)
        fig.tight_layout()
        fig.savefig(folder / f"{dataset}.png", dpi=90)
        plt.close(fig)


def trial_count(result: dict[str, Any]) -> int:
    return len(result["notes"]["trials"]) if result.get("notes", {}).get("trials") else int(result.get("trials") or 0)


def tables(results: list[dict[str, Any]], budget: float, datasets: Sequence[str]) -> str:
    """The markdown: test scores (mean over seeds, and each seed's), spread, ranks, trials, wall."""
    frame = pd.DataFrame([{"dataset": r["dataset"], "metric": r.get("metric"), "strategy": r["strategy"],
                           "seed": r["seed"], "score": r.get("score"), "wall": r["wall_seconds"],
                           "peak_mb": r["peak_mem_mb"], "trials": trial_count(r),
                           "error": r.get("error")} for r in results])
    ok = frame.dropna(subset=["score"])
    means = ok.groupby(["dataset", "strategy"])["score"].mean().unstack()
    strategies = [s for s in STRATEGIES if s in means.columns]
    order = [d for d in datasets if d in means.index]
    metric = ok.groupby("dataset")["metric"].first()
    lines = ["| dataset | metric | " + " | ".join(strategies) + " | spread |",
             "|---|---|" + "---|" * (len(strategies) + 1)]
    ranks = []
    for d in order:
        higher = HIGHER_IS_BETTER[metric[d]]
        row = means.loc[d, strategies]
        ranks.append(row.rank(ascending=not higher))
        best = row.max() if higher else row.min()
        # the spread: the widest gap between two seeds of one strategy, in % of their mean
        gaps = ok[ok.dataset == d].groupby("strategy")["score"].agg(lambda s: (s.max() - s.min()) / abs(s.mean()) * 100)
        cells = []
        for s in strategies:
            seeds = ok[(ok.dataset == d) & (ok.strategy == s)].sort_values("seed")["score"]
            text = f"{row[s]:.4f} ({', '.join(f'{v:.4f}' for v in seeds)})" if len(seeds) > 1 else f"{row[s]:.4f}"
            cells.append(f"**{text}**" if row[s] == best else text)
        lines.append(f"| {d} | {metric[d]} | " + " | ".join(cells) + f" | {gaps.max():.1f}% |")
    rank = pd.concat(ranks, axis=1).mean(axis=1) if ranks else pd.Series(dtype=float)
    lines.append("| **mean rank** | | " + " | ".join(f"**{rank[s]:.2f}**" for s in strategies) + " | |")
    count = ok.groupby("strategy")["trials"].mean()
    wall = ok.groupby("strategy")["wall"].max()
    peak = ok.groupby("strategy")["peak_mb"].max()
    lines.append("| trials (mean) | | " + " | ".join(f"{count[s]:.0f}" for s in strategies) + " | |")
    lines.append("| wall (max s) | | " + " | ".join(f"{wall[s]:.1f}" for s in strategies) + " | |")
    lines.append("| peak RSS (max MB) | | " + " | ".join(f"{peak[s]:.0f}" for s in strategies) + " | |")
    failed = frame[frame["error"].notna()]
    notes = [f"- {r.dataset} {r.strategy} seed {r.seed}: {r.error}" for r in failed.itertuples()]
    return "\n".join(lines + ([""] + ["Failed runs:"] + notes if notes else []))


def report(budget: float, name: str, cases: Sequence[str], datasets: Sequence[str],
           scores: Path | None = None) -> None:
    results = load(budget, cases, scores)
    out = runner.BENCH / "results"
    keys = ("dataset", "metric", "strategy", "seed", "score", "wall_seconds", "peak_mem_mb", "error")
    pd.DataFrame([{k: r.get(k) for k in keys} | {"trials": trial_count(r)}
                  for r in results]).to_csv(out / f"{name}.csv", index=False)
    plot_curves(results, budget, out / name)
    seeds = sorted({r["seed"] for r in results})
    commits = sorted({r.get("notes", {}).get("commit", "") for r in results})
    text = [f"# {', '.join(cases)} at {runner.budget_tag(budget)} s on the public suite", "",
            f"`benchmarks/strategies.py run --budget {runner.budget_tag(budget)} --seeds {','.join(map(str, seeds))} "
            f"--cases {','.join(cases)}`, "
            f"then `report`; code {', '.join(commits)}; {runner.machine()}.",
            "Test score per strategy: the mean over seeds, each seed's in brackets (bold: the best mean). Spread: the",
            "widest gap between two seeds of one strategy on that table, in % of their mean: a difference between",
            "strategies smaller than it is not evidence. Anytime curves (best CV score so far against time): "
            f"[{name}/]({name}/).", "", tables(results, budget, datasets), ""]
    (out / f"{name}.md").write_text("\n".join(text))
    print("\n".join(text))


def main(argv: Sequence[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("command", choices=("run", "report"))
    parser.add_argument("--budget", type=float, default=60)
    parser.add_argument("--seeds", default="0,1")
    parser.add_argument("--preset", choices=tuple(PRESETS), default="strategies")
    parser.add_argument("--cases", help=f"comma-separated, of {', '.join(CASES)} (default: the preset's)")
    parser.add_argument("--datasets")
    parser.add_argument("--name")
    parser.add_argument("--scores", type=Path, help="report: an earlier report's CSV, for runs not kept")
    args = parser.parse_args(argv)
    datasets = list(suite_tasks())
    chosen = args.datasets.split(",") if args.datasets else datasets
    cases = args.cases.split(",") if args.cases else list(PRESETS[args.preset])
    if args.command == "run":
        run(args.budget, [int(s) for s in args.seeds.split(",")], cases, chosen)
    else:
        report(args.budget, args.name or f"{args.preset}_{runner.budget_tag(args.budget)}s", cases, chosen,
               args.scores)


if __name__ == "__main__":
    main()
