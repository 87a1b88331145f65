"""One system's scores before and after a change, each side one or more `run.py` runs of the same code.

    python benchmarks/versions.py --before results/suite_60s_v12.csv,results/suite_60s_v12b.csv \
        --after results/suite_60s_v13.csv [--system tabpilot] [--out results/suite_60s_v12_v13.md]

Per dataset: every run's score, each side's mean, the run-to-run spread (the widest gap between two
runs of the same code, in % of their mean, over both sides) and the change of the means in %
(positive = better). A change inside the spread is "level": one run per side cannot tell it apart
from noise.
"""
from __future__ import annotations

import argparse
from pathlib import Path

import pandas as pd
from peers import HIGHER_IS_BETTER, emit


def _scores(paths: list[Path], system: str) -> pd.DataFrame:
    frames = []
    for path in paths:
        runs = pd.read_csv(path)
        frames.append(runs[runs["system"] == system].set_index("dataset")[["metric", "score"]]
                      .rename(columns={"score": path.stem}))
    out = frames[0]
    for frame in frames[1:]:
        out = out.join(frame.drop(columns="metric"), how="inner")
    return out


def compare(before: list[Path], after: list[Path], system: str) -> pd.DataFrame:
    a, b = _scores(before, system), _scores(after, system)
    runs_a, runs_b = [p.stem for p in before], [p.stem for p in after]
    both = a.join(b.drop(columns="metric"), how="inner")
    rows = []
    for dataset, r in both.iterrows():
        sign = 1.0 if HIGHER_IS_BETTER[r["metric"]] else -1.0
        mean_a, mean_b = r[runs_a].mean(), r[runs_b].mean()
        spread = max((r[side].max() - r[side].min()) / abs(r[side].mean()) * 100 for side in (runs_a, runs_b))
        change = sign * (mean_b - mean_a) / abs(mean_a) * 100
        # 1e-9: the mean of equal scores can differ from them in the last bit
        verdict = "level" if abs(change) <= spread + 1e-9 else "better" if change > 0 else "WORSE"
        rows.append({"dataset": dataset, "metric": r["metric"], **{k: r[k] for k in runs_a + runs_b},
                     "spread_pct": spread, "change_pct": change, "verdict": verdict})
    return pd.DataFrame(rows)


def markdown(table: pd.DataFrame, before: list[Path], after: list[Path], system: str) -> str:
    runs = [p.stem for p in before + after]
    counts = table["verdict"].value_counts()
    lines = [f"# {system}: {', '.join(p.stem for p in before)} against {', '.join(p.stem for p in after)}", "",
             f"After the change: better on {counts.get('better', 0)}, level on {counts.get('level', 0)}, worse "
             f"on {counts.get('WORSE', 0)} of {len(table)} datasets (level: the change of the means is inside the "
             "widest gap between two runs of the same code).", "",
             "| dataset | metric | " + " | ".join(runs) + " | spread % | change % | verdict |",
             "|---|---|" + "---|" * len(runs) + "---|---|---|"]
    for r in table.to_dict("records"):
        scores = " | ".join(f"{r[k]:.4f}" for k in runs)
        lines.append(f"| {r['dataset']} | {r['metric']} | {scores} | {r['spread_pct']:.2f} | "
                     f"{r['change_pct']:+.2f} | {r['verdict']} |")
    return "\n".join(lines) + "\n"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--before", required=True, help="comma-separated run.py CSVs of the code before")
    parser.add_argument("--after", required=True, help="comma-separated run.py CSVs of the code after")
    parser.add_argument("--system", default="tabpilot")
    parser.add_argument("--out", type=Path, help="write the Markdown table here as well")
    args = parser.parse_args()
    before = [Path(p) for p in args.before.split(",")]
    after = [Path(p) for p in args.after.split(",")]
    table = compare(before, after, args.system)
    emit(markdown(table, before, after, args.system), args.out)


if __name__ == "__main__":
    main()
