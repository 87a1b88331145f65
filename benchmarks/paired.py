"""How sure a comparison on the protocol's test split is: a paired bootstrap over its rows.

    python benchmarks/paired.py benchmarks/.work/runs/b60/tabpilot benchmarks/.work/runs/b300/tabpilot \
        [--resamples 2000] [--out benchmarks/results/paired_60s_300s.md]
    python benchmarks/paired.py hgb benchmarks/.work/runs/b60/tabpilot [--out ...]

Each side is a folder of kept tabpilot runs (`run.py run --keep-work`: a work dir per dataset,
holding the `pred.parquet` the benchmark scored), or `hgb`: a default HistGradientBoosting fitted
exactly as the benchmark's hgb adapter fits it. For every dataset both sides have, the test rows
are drawn with replacement `--resamples` times and both sides scored on each draw; "P(B better)"
is the share of draws on which the second side wins. One split's test rows decide a comparison
only when P is near 0 or 1; at 0.3-0.7 another split could as well reverse it.

For RMSE the report also gives the fewest test rows whose removal reverses the order: the rows
where the winner's squared error is smallest next to the loser's, taken greedily (optimal, since
both sides are then compared on the same rows' sum of squared errors).
"""
from __future__ import annotations

import argparse
import tempfile
from pathlib import Path

import numpy as np
from peers import HIGHER_IS_BETTER, emit
from peers.common import Run, Split, load_split, metric_value
from peers.hgb import fit_predict as hgb_fit_predict
from peers.tabpilot import read_predictions

RESAMPLES = 2000


def predictions(side: str, split: Split) -> np.ndarray | None:
    """One side's predictions of the split's test rows, or None when it has no kept run of it."""
    if side == "hgb":
        with tempfile.TemporaryDirectory() as workdir:
            return hgb_fit_predict(Run(split, 0.0, Path(workdir)))
    kept = Path(side) / split.dataset / "pred.parquet"
    return read_predictions(kept, split) if kept.is_file() else None


def rows_to_reverse(y: np.ndarray, a: np.ndarray, b: np.ndarray) -> int:
    """The fewest rows whose removal reverses an RMSE comparison (0 for a tie)."""
    gap = (a - y) ** 2 - (b - y) ** 2  # positive where b is closer
    winner_gain = gap if gap.sum() > 0 else -gap
    ordered = np.sort(winner_gain)[::-1]
    reversed_after = np.nonzero(winner_gain.sum() - np.cumsum(ordered) < 0)[0]
    return int(reversed_after[0] + 1) if len(reversed_after) else 0


def compare(split: Split, a: np.ndarray, b: np.ndarray, resamples: int, seed: int = 0) -> dict[str, object]:
    y = split.y_test.to_numpy()
    sign = 1.0 if HIGHER_IS_BETTER[split.metric] else -1.0
    rng = np.random.default_rng(seed)
    wins = ties = drawn = 0
    for _ in range(resamples):
        rows = rng.integers(0, len(y), len(y))
        if split.metric == "roc_auc" and len(set(y[rows])) < 2:
            continue  # no AUC without both classes
        drawn += 1
        diff = sign * (metric_value(split, y[rows], b[rows]) - metric_value(split, y[rows], a[rows]))
        wins += diff > 0
        ties += diff == 0
    score_a, score_b = metric_value(split, y, a), metric_value(split, y, b)
    out: dict[str, object] = {"dataset": split.dataset, "metric": split.metric, "test_rows": len(y),
                              "a": score_a, "b": score_b, "b_better": sign * (score_b - score_a) > 0,
                              "p_b_better": (wins + ties / 2) / max(drawn, 1)}
    if split.metric == "rmse":
        out["rows_to_reverse"] = rows_to_reverse(y.astype(float), a, b)
    return out


def markdown(rows: list[dict[str, object]], a: str, b: str, resamples: int) -> str:
    better = sum(bool(r["b_better"]) for r in rows)
    sure = sum(float(r["p_b_better"]) >= 0.9 for r in rows)  # type: ignore[arg-type]
    sure_not = sum(float(r["p_b_better"]) <= 0.1 for r in rows)  # type: ignore[arg-type]
    lines = [f"# {b} against {a}: paired bootstrap over the test rows", "",
             f"Command: `python benchmarks/paired.py {a} {b} --resamples {resamples}`.", "",
             f"B ({b}) is better on {better} of {len(rows)} datasets; the test rows make that sure "
             f"(P >= 0.9) on {sure}, and the opposite sure (P <= 0.1) on {sure_not}.", "",
             "| dataset | metric | test rows | A | B | B better | P(B better) | rows that reverse it |",
             "|---|---|---|---|---|---|---|---|"]
    for r in rows:
        lines.append(f"| {r['dataset']} | {r['metric']} | {r['test_rows']} | {r['a']:.4f} | {r['b']:.4f} | "
                     f"{'yes' if r['b_better'] else 'no'} | {r['p_b_better']:.2f} | {r.get('rows_to_reverse', '')} |")
    return "\n".join(lines) + "\n"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("a", help="a folder of kept tabpilot runs, or hgb")
    parser.add_argument("b", help="a folder of kept tabpilot runs, or hgb")
    parser.add_argument("--resamples", type=int, default=RESAMPLES)
    parser.add_argument("--out", type=Path)
    args = parser.parse_args()
    folders = [Path(s) for s in (args.a, args.b) if s != "hgb"]
    datasets = sorted(set.intersection(*({p.name for p in f.iterdir() if p.is_dir()} for f in folders)))
    rows = []
    for dataset in datasets:
        split = load_split(dataset)
        a, b = predictions(args.a, split), predictions(args.b, split)
        if a is not None and b is not None:
            rows.append(compare(split, a, b, args.resamples))
            print(f"{dataset}: P(B better) = {rows[-1]['p_b_better']:.2f}")
    text = markdown(rows, args.a, args.b, args.resamples)
    emit(text, args.out)


if __name__ == "__main__":
    main()
