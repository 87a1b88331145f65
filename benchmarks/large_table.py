"""A seeded synthetic binary table the size of issue 22's: 50 columns (40 numeric, 10 categorical with
3 to 1,000 levels, 5% nulls in one column), written as Parquet, train and test.

    .venv/bin/python benchmarks/large_table.py --rows 1000000 --out benchmarks/.work/large

writes train.parquet (all rows but the last `--test-rows`, 50,000) and test.parquet. The label is a
noisy logistic function of some numbers (linear, an interaction, a threshold, a sine), of skewed
ones through their logarithm, and of level effects of five categorical columns, two of them with
hundreds of levels: a default gradient boosting reaches an AUC near 0.97 on a million rows, and
the last fractions of it take more rows and tuning. The same seed and row count give the same table.
"""
from __future__ import annotations

import argparse
from pathlib import Path

import numpy as np
import pandas as pd

NUMERIC = 40
LEVELS = (3, 5, 8, 12, 20, 50, 100, 250, 500, 1000)  # one categorical column each
NULL_COLUMN, NULL_SHARE = "num_07", 0.05
TARGET = "label"


def make_table(rows: int, seed: int = 0) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    latent = rng.normal(size=(rows, 8))  # shared factors: the numbers are correlated in groups
    numbers = {}
    for i in range(NUMERIC):
        base = latent[:, i % 8] * rng.uniform(0.3, 1.0) + rng.normal(size=rows)
        if i % 5 == 3:
            base = np.exp(base / 2)  # skewed, as amounts and counts are
        elif i % 5 == 4:
            base = np.round(base * 3 + 10)  # small integers
        numbers[f"num_{i:02d}"] = base.astype(np.float32 if i % 2 else np.float64)
    frame = pd.DataFrame(numbers)
    effects = 0.0
    for j, levels in enumerate(LEVELS):
        weights = 1.0 / np.arange(1, levels + 1) ** 1.1  # a few frequent levels, a long tail
        codes = rng.choice(levels, size=rows, p=weights / weights.sum())
        frame[f"cat_{j}"] = pd.Categorical.from_codes(codes, [f"c{j}_{k}" for k in range(levels)]).astype(str)
        if j in (1, 3, 6, 7, 9):  # five carry signal, two of them wide
            effects = effects + rng.normal(scale=0.8, size=levels)[codes]
    x = frame
    signal = (1.2 * x["num_00"] - 0.9 * x["num_01"] + 0.7 * x["num_02"] * x["num_05"]
              + 1.5 * (x["num_06"] > 0.8) + 1.1 * np.sin(2 * x["num_10"]) + 0.8 * np.log1p(x["num_03"])
              - 0.6 * np.log1p(x["num_13"]) + 0.5 * (x["num_04"] - 10) / 3 + 0.9 * np.abs(x["num_11"])
              + 0.6 * x["num_07"].fillna(0) + effects)
    logit = 12.0 * (signal - signal.mean()) / signal.std() + rng.normal(scale=0.6, size=rows)
    frame[TARGET] = np.where(rng.random(rows) < 1 / (1 + np.exp(-logit)), "yes", "no")
    frame.loc[rng.random(rows) < NULL_SHARE, NULL_COLUMN] = np.nan
    return frame


def write(rows: int, out: Path, test_rows: int = 50_000, seed: int = 0) -> tuple[Path, Path]:
    """train.parquet and test.parquet in `out`, made once per (rows, seed): an existing pair is kept."""
    out.mkdir(parents=True, exist_ok=True)
    train, test = out / f"train_{rows}_s{seed}.parquet", out / f"test_{rows}_s{seed}.parquet"
    if not (train.exists() and test.exists()):
        frame = make_table(rows, seed)
        frame.iloc[:-test_rows].to_parquet(train, index=False)
        frame.iloc[-test_rows:].to_parquet(test, index=False)
    return train, test


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=1_000_000)
    parser.add_argument("--test-rows", type=int, default=50_000)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--out", type=Path, default=Path(__file__).parent / ".work" / "large")
    args = parser.parse_args()
    for path in write(args.rows, args.out, args.test_rows, args.seed):
        print(path)


if __name__ == "__main__":
    main()
