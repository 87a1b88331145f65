"""Drift: the population stability index on cases whose answer is known."""
from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from tabpilot.data.drift import compare, profile, psi


def _frame(n: int, shift: float = 0.0, seed: int = 0, red: float = 0.3) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    return pd.DataFrame({"x": rng.normal(shift, 1.0, n), "colour": np.where(rng.random(n) < red, "red", "blue"),
                         "y": np.where(rng.random(n) < 0.5, "yes", "no")})


def test_psi_by_hand() -> None:
    # (0.6-0.5)ln(0.6/0.5) + (0.4-0.5)ln(0.4/0.5) = 0.1*0.18232 + 0.1*0.22314
    assert psi(np.array([0.5, 0.5]), np.array([0.6, 0.4])) == pytest.approx(0.040546, abs=1e-6)
    assert psi(np.array([0.5, 0.5]), np.array([0.5, 0.5])) == 0.0


def test_a_sample_of_the_same_population_is_stable_and_a_shifted_one_drifts() -> None:
    reference = profile(_frame(5000))
    same = compare(reference, _frame(2000, seed=1), "y", 0.1, 0.25)
    assert same["drifted_features"] == [] and all(c["status"] == "stable" for c in same["features"].values())
    moved = compare(reference, _frame(2000, shift=1.5, seed=1, red=0.8), "y", 0.1, 0.25)
    assert moved["drifted_features"] == ["colour", "x"]
    assert moved["target"]["status"] == "stable" and "y" not in moved["features"]


def test_missing_values_and_unseen_levels_count_as_shift() -> None:
    reference = profile(_frame(4000))
    batch = _frame(1000, seed=2)
    batch.loc[: 399, "x"] = np.nan  # 40% missing, none in training
    batch.loc[: 399, "colour"] = "green"  # a level never seen
    found = compare(reference, batch, "y", 0.1, 0.25)
    assert found["features"]["x"]["status"] == "drift" and found["features"]["colour"]["status"] == "drift"


def test_target_drift_is_reported_apart() -> None:
    reference = profile(_frame(4000))
    batch = _frame(1000, seed=3)
    batch["y"] = "yes"
    found = compare(reference, batch, "y", 0.1, 0.25)
    assert found["target"]["status"] == "drift" and found["drifted_features"] == []
