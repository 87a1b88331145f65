"""What-ifs on kept benchmark runs, without rerunning a search (`run.py run --keep-work` keeps them).

    python benchmarks/kept_runs.py rules benchmarks/.work/runs/b60/tabpilot benchmarks/.work/runs/b300/tabpilot \
        [--rules current,single,...] [--out benchmarks/results/ensemble_rules.md]
    python benchmarks/kept_runs.py seeds benchmarks/.work/runs/b300/tabpilot/titanic [--seeds 0,1,2] [--bags 1,3]

`rules`: each ensemble-selection rule picks weights from a run's candidates' out-of-fold predictions,
as the ensemble stage does; the weighted bags of the candidates' fold models are then scored on two
test sets no rule saw: the run's own held-out split and the benchmark's test split. The fold models
were trained on the run's training split only (the benchmark's refit on all rows is left out), so
a rule is judged by what it chose, not by the luck of a refit.

`seeds`: the run's chosen ensemble refit on all rows, as `ensemble.refit_full` does, under other
seeds and with bags of more repeats, scored on the benchmark's test split: how much of a score is
the refit's luck. Seed 0 at 1x reproduces the benchmark's own score.
"""
from __future__ import annotations

import argparse
import sys
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
from peers import METRIC_BY_TASK
from peers.common import SEED, load_split

from tabpilot.core.artifacts import RunPaths, load_pickle, read_json
from tabpilot.core.config import Config
from tabpilot.core.metrics import Metric, resolve
from tabpilot.data.files import Schema, normalise
from tabpilot.ensemble.model import EnsembleModel, apply_temperature, caruana_select, fit_temperature
from tabpilot.search.evaluate import encode_target, load_workload, predict, refit
from tabpilot.search.fold_bag import FoldBag
from tabpilot.training.ensemble_stage import candidates_out_of_fold

ROUNDS = 25  # the ensemble stage's default `ensemble.size`
BAGS = 20  # selections averaged by the bagged rules


@dataclass
class Kept:
    """One kept run: its candidates' out-of-fold predictions and their fold bags' test predictions."""

    dataset: str
    budget: float
    metric: Metric
    y: np.ndarray
    oof: dict[int, np.ndarray]
    family: dict[int, str]
    y_test: np.ndarray
    test: dict[int, np.ndarray]
    y_bench: np.ndarray
    bench: dict[int, np.ndarray]


def run_config(work_dir: Path) -> tuple[Config, Any]:
    """The configuration the adapter trained with (peers/tabpilot.py's flags), and the protocol split."""
    result = read_json(work_dir / "result.json")
    split = load_split(result["dataset"])
    params = {"seed": SEED, "search": {"time_budget": result["budget"], "metric": METRIC_BY_TASK[split.task]},
              "ensemble": {"refit_full": True}}
    return Config.model_validate(params), split


def bench_features(split: Any, like: pd.DataFrame) -> pd.DataFrame:
    """The benchmark's test features as `tabpilot predict` reads them: normalised, in the training types."""
    test = split.X_test.astype({c: object for c in split.X_test.columns
                                if isinstance(split.X_test[c].dtype, pd.CategoricalDtype)})
    return normalise(test)[like.columns].astype(like.dtypes.to_dict())


def bench_target(split: Any, schema: Schema) -> np.ndarray:
    return encode_target(split.y_test.astype(str) if split.is_classification else split.y_test, schema)


def load_kept(work_dir: Path) -> Kept:
    cfg, split = run_config(work_dir)
    paths = RunPaths(work_dir / "run")
    schema = Schema.load(paths.schema)
    records, top, oof, y = candidates_out_of_fold(cfg, paths, schema)
    # Only candidates with kept fold models can be scored on the test sets without a refit.
    top = [t for t in top if paths.fold_models_of(t).exists()]
    train = pd.read_parquet(paths.train).drop(columns=[schema.target])
    test = pd.read_parquet(paths.test)
    y_test = encode_target(test.pop(schema.target), schema)
    bench = bench_features(split, train)
    bags = {t: FoldBag(load_pickle(paths.fold_models_of(t))).fit() for t in top}
    return Kept(split.dataset, cfg.search.time_budget, resolve(cfg.search.metric, schema.task), y,
                {t: oof[t] for t in top}, {t: records[t]["family"] for t in top}, y_test,
                {t: predict(b, test, schema.task) for t, b in bags.items()},
                bench_target(split, schema),
                {t: predict(b, bench, schema.task) for t, b in bags.items()})


Rule = Callable[[Kept, np.random.Generator], dict[int, float]]


def current(k: Kept, rng: np.random.Generator) -> dict[int, float]:
    return caruana_select(k.oof, k.y, k.metric, ROUNDS)


def single(k: Kept, rng: np.random.Generator) -> dict[int, float]:
    return {min(k.oof, key=lambda t: (k.metric.loss(k.y, k.oof[t]), t)): 1.0}


def top_equal(n: int) -> Rule:
    def rule(k: Kept, rng: np.random.Generator) -> dict[int, float]:
        return {t: 1.0 for t in sorted(k.oof, key=lambda t: (k.metric.loss(k.y, k.oof[t]), t))[:n]}
    return rule


def family_cap(cap: int) -> Rule:
    """Caruana over each family's `cap` best candidates only."""
    def rule(k: Kept, rng: np.random.Generator) -> dict[int, float]:
        seen: Counter[str] = Counter()
        keep = {}
        for t in sorted(k.oof, key=lambda t: (k.metric.loss(k.y, k.oof[t]), t)):
            if seen[k.family[t]] < cap:
                keep[t], seen[k.family[t]] = k.oof[t], seen[k.family[t]] + 1
        return caruana_select(keep, k.y, k.metric, ROUNDS)
    return rule


def bagged(share: float | None) -> Rule:
    """Caruana's bagged ensemble selection: weights averaged over selections from random subsets of
    the candidates (`share` of them), or with `share=None` from bootstrap samples of the rows."""
    def rule(k: Kept, rng: np.random.Generator) -> dict[int, float]:
        total: Counter[int] = Counter()
        ids = sorted(k.oof)
        for _ in range(BAGS):
            if share is None:
                rows = rng.choice(len(k.y), len(k.y), replace=True)
                weights = caruana_select({t: p[rows] for t, p in k.oof.items()}, k.y[rows], k.metric, ROUNDS)
            else:
                chosen = rng.choice(ids, max(2, round(share * len(ids))), replace=False)
                weights = caruana_select({t: k.oof[t] for t in chosen}, k.y, k.metric, ROUNDS)
            total.update({t: w / BAGS for t, w in weights.items()})
        return dict(total)
    return rule


RULES: dict[str, Rule] = {"current": current, "single": single, "top3_equal": top_equal(3),
                          "family_cap1": family_cap(1), "family_cap2": family_cap(2), "family_cap3": family_cap(3),
                          "bagged_half": bagged(0.5), "bagged_rows": bagged(None)}


def scores(k: Kept, weights: dict[int, float]) -> tuple[float, float, float]:
    """The blend's score out of fold, on the run's held-out split and on the benchmark's test split."""
    def blend(predictions: dict[int, np.ndarray]) -> np.ndarray:
        return sum(w * predictions[t] for t, w in weights.items()) / sum(weights.values())  # type: ignore[return-value]
    temperature = fit_temperature(blend(k.oof), k.y) if k.metric.name == "log_loss" else 1.0
    return tuple(k.metric.score(y, apply_temperature(blend(p), temperature) if temperature != 1.0 else blend(p))
                 for y, p in ((k.y, k.oof), (k.y_test, k.test), (k.y_bench, k.bench)))  # type: ignore[return-value]


def compare_rules(roots: list[Path], rules: list[str]) -> pd.DataFrame:
    rows = []
    for root in roots:
        for work_dir in sorted(p for p in root.iterdir() if (p / "run" / "artifacts" / "search").exists()):
            kept = load_kept(work_dir)
            for name in rules:
                weights = RULES[name](kept, np.random.default_rng(SEED))
                cv, held_out, bench = scores(kept, weights)
                rows.append({"dataset": kept.dataset, "budget": kept.budget, "rule": name, "members": len(weights),
                             "cv": cv, "held_out": held_out, "bench": bench,
                             "sign": 1.0 if kept.metric.greater_is_better else -1.0})
            print(f"{kept.dataset} at {kept.budget:g} s: done", file=sys.stderr)
    return pd.DataFrame(rows)


def rules_markdown(frame: pd.DataFrame, roots: list[Path]) -> str:
    budgets = sorted(frame["budget"].unique())
    lines = ["# Ensemble-selection rules on kept runs", "",
             f"Runs: {', '.join(str(r) for r in roots)}. Command: `python benchmarks/kept_runs.py rules ...` "
             "(see its docstring). Scores are out of fold / on the run's held-out split / on the benchmark's "
             "test split, with the candidates' fold bags (no refit on all rows).", "",
             "## Against the current rule (mean change in %, positive = better; wins/losses per dataset and budget)",
             "", "| rule | held-out % | held-out wins/losses | bench % | bench wins/losses |"
             + (" longer budget better (held-out / bench) |" if len(budgets) > 1 else ""),
             "|---|---|---|---|---|" + ("---|" if len(budgets) > 1 else "")]
    base = frame[frame["rule"] == "current"].set_index(["dataset", "budget"])
    for name, group in frame.groupby("rule", sort=False):
        g = group.set_index(["dataset", "budget"])
        cells = []
        for col in ("held_out", "bench"):
            change = g["sign"] * (g[col] - base[col]) / base[col].abs() * 100
            cells += [f"{change.mean():+.3f}", f"{int((change > 1e-9).sum())}/{int((change < -1e-9).sum())}"]
        if len(budgets) > 1:
            short, long = g.xs(budgets[0], level="budget"), g.xs(budgets[-1], level="budget")
            better = [int((short["sign"] * (long[c] - short[c]) > 0).sum()) for c in ("held_out", "bench")]
            cells.append(f"{better[0]} / {better[1]} of {len(short)}")
        lines.append(f"| {name} | " + " | ".join(cells) + " |")
    lines += ["", "## Per dataset (cv / held-out / bench, members)", "",
              "| dataset | budget | " + " | ".join(frame["rule"].unique()) + " |",
              "|---|---|" + "---|" * frame["rule"].nunique()]
    for (dataset, budget), group in frame.groupby(["dataset", "budget"], sort=False):
        cells = [f"{r.cv:.4g} / {r.held_out:.4g} / {r.bench:.4g} ({r.members})" for r in group.itertuples()]
        lines.append(f"| {dataset} | {budget:g} | " + " | ".join(cells) + " |")
    return "\n".join(lines) + "\n"


def refit_seeds(work_dir: Path, seeds: list[int], bags: list[int], unbagged: set[str]) -> list[dict[str, Any]]:
    """The run's ensemble refit on all rows per seed and bag size (x the members' repeats), scored on
    the benchmark's test split; members of the `unbagged` families are refit as one model instead."""
    cfg, split = run_config(work_dir)
    paths = RunPaths(work_dir / "run")
    chosen = read_json(paths.metrics)
    records = {r["trial"]: r for r in read_json(paths.trials)}
    out = []
    for seed in seeds:
        work = load_workload(str(paths.root), cfg.with_overrides({"seed": seed}).to_dict())
        bench, y_bench = bench_features(split, work.X), bench_target(split, work.schema)
        for times in bags:
            members = []
            for member in chosen["members"]:
                record = records[member["trial"]]
                job = {"candidate": {k: record.get(k) for k in ("family", "params", "features")}, "with_test": True,
                       "bagged": member["bagged"] and record["family"] not in unbagged,
                       "repeats": record.get("repeats", 1) * times}
                members.append(refit(work, job)["model"])
            model = EnsembleModel(members, [m["weight"] for m in chosen["members"]], work.schema.task,
                                  work.schema.classes, chosen["temperature"]).fit()
            score = work.metric.score(y_bench, predict(model, bench, work.schema.task))
            out.append({"dataset": split.dataset, "budget": cfg.search.time_budget, "seed": seed, "bags": times,
                        "unbagged": ",".join(sorted(unbagged)), "bench": score})
            print(f"{split.dataset} at {cfg.search.time_budget:g} s, seed {seed}, bags x{times}: {score:.5g}")
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    sub = parser.add_subparsers(dest="command", required=True)
    rules = sub.add_parser("rules", help="compare ensemble-selection rules")
    rules.add_argument("roots", type=Path, nargs="+", help="folders of kept runs, one per budget")
    rules.add_argument("--rules", default=",".join(RULES))
    rules.add_argument("--out", type=Path)
    seeds = sub.add_parser("seeds", help="refit a run's ensemble under other seeds")
    seeds.add_argument("work_dir", type=Path)
    seeds.add_argument("--seeds", default="0,1,2,3")
    seeds.add_argument("--bags", default="1", help="bag sizes, in multiples of each member's repeats")
    seeds.add_argument("--unbagged", default="", help="families refit as one model, not as a bag")
    seeds.add_argument("--csv", type=Path, help="append the scores to this CSV")
    args = parser.parse_args()
    if args.command == "seeds":
        rows = refit_seeds(args.work_dir, [int(s) for s in args.seeds.split(",")],
                           [int(b) for b in args.bags.split(",")], set(filter(None, args.unbagged.split(","))))
        if args.csv:
            pd.DataFrame(rows).to_csv(args.csv, mode="a", header=not args.csv.exists(), index=False)
        return
    unknown = set(args.rules.split(",")) - set(RULES)
    if unknown:
        parser.error(f"unknown rules {sorted(unknown)}; choose from {list(RULES)}")
    text = rules_markdown(compare_rules(args.roots, args.rules.split(",")), args.roots)
    print(text)
    if args.out:
        args.out.write_text(text)


if __name__ == "__main__":
    main()
