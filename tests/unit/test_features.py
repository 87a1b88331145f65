"""Feature construction and selection: each transformer on a case whose answer is known."""
from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from tabpilot.core.config import FAMILIES, FeaturesConfig, PreprocessConfig
from tabpilot.data.features import (
    PLAIN,
    FeatureSelector,
    FrequencyEncoder,
    Interactions,
    consensus,
    feature_space,
    plan_features,
)
from tabpilot.data.files import Schema
from tabpilot.data.preprocessing import plan_preprocessing
from tabpilot.search.estimators import make_pipeline
from tabpilot.search.evaluate import encode_target
from tabpilot.search.hpo import HyperoptSearch
from tests.helpers import make_frame


def test_interactions_pick_the_informative_columns_and_build_their_arithmetic() -> None:
    rng = np.random.default_rng(0)
    X = pd.DataFrame({"a": rng.normal(size=600), "b": rng.normal(size=600), "noise": rng.normal(size=600)})
    y = (X["a"] * X["b"] > 0).astype(int).to_numpy() ^ (X["a"] > 1).astype(int).to_numpy()
    made = Interactions("binary", top=2, seed=0).fit(X, y)
    assert made.columns_ == ["a", "b"]
    out = made.transform(X.head(3))
    assert list(out.columns) == list(made.get_feature_names_out())
    assert {"a^2", "log(b)", "a+b", "a-b", "a*b", "a/b"} <= set(out.columns)
    np.testing.assert_allclose(out["a*b"], X["a"].head(3) * X["b"].head(3))
    zero = made.transform(pd.DataFrame({"a": [1.0], "b": [0.0], "noise": [0.0]}))
    assert np.isnan(zero.loc[0, "a/b"])  # no infinities leave a division by zero


def test_the_folds_decisions_become_one_by_vote() -> None:
    folds = [{"interactions": ["a", "b"], "columns": ["x", "y"]}, {"interactions": ["a", "c"], "columns": ["x", "z"]},
             {"interactions": ["a", "c"], "columns": ["y", "x"]}, {"interactions": ["a", "b"], "columns": ["w"]}]
    # a tie of combined columns goes to the earliest; a feature stays with at least half the votes of
    # the folds that combined those
    assert consensus(folds) == {"interactions": ["a", "b"], "columns": ["x", "y", "w"]}
    assert consensus([{"columns": c["columns"]} for c in folds]) == {"columns": ["x", "y"]}
    assert consensus([{"columns": ["x"]}]) == {"columns": ["x"]} and consensus([{}, {}]) == {}


def test_given_columns_are_fitted_whatever_the_rows_suggest() -> None:
    rng = np.random.default_rng(0)
    X = pd.DataFrame({"a": rng.normal(size=300), "b": rng.normal(size=300), "noise": rng.normal(size=300)})
    y = (X["a"] > 0).astype(int).to_numpy()
    assert Interactions("binary", top=1, seed=0).fit(X, y).columns_ == ["a"]
    assert Interactions("binary", top=1, seed=0, columns=("noise",)).fit(X, y).columns_ == ["noise"]
    chosen = FeatureSelector("binary", keep=0.34, seed=0, columns=("noise", "gone"), protect=("b",)).fit(X, y)
    assert chosen.columns_ == ["b", "noise"] and chosen.dropped_ == ["a"]


def test_frequency_encoding_uses_the_fitted_rows_and_zero_for_unseen_levels() -> None:
    encoder = FrequencyEncoder().fit(pd.DataFrame({"c": ["x", "x", "x", "y"]}))
    out = encoder.transform(pd.DataFrame({"c": ["x", "y", "z"]}))
    assert out["c__freq"].tolist() == [0.75, 0.25, 0.0]


def test_target_encoding_is_cross_fitted_on_the_training_rows() -> None:
    from tabpilot.data.features import TargetEncoding

    rng = np.random.default_rng(2)
    X = pd.DataFrame({"c": rng.choice([f"l{i}" for i in range(30)], 400).astype(object)})
    y = rng.integers(0, 2, 400)  # no signal: honest encodings of training rows hover near the base rate
    encoder = TargetEncoding("binary", seed=0)
    crossed = encoder.fit_transform(X, y)
    assert list(crossed.columns) == ["c__target"]
    refit = encoder.transform(X)  # the full-data encoding, which did see each row's own target
    assert not np.allclose(crossed["c__target"], refit["c__target"])
    assert np.corrcoef(crossed["c__target"], y)[0, 1] < np.corrcoef(refit["c__target"], y)[0, 1]


def test_the_selector_drops_a_near_duplicate_then_keeps_the_most_informative() -> None:
    rng = np.random.default_rng(1)
    signal = rng.normal(size=500)
    X = pd.DataFrame({"signal": signal, "copy": signal * 2 + 1e-6 * rng.normal(size=500),
                      "weak": signal + rng.normal(scale=3, size=500), "noise": rng.normal(size=500),
                      "cat": rng.integers(0, 3, 500).astype(float)})
    y = (signal > 0).astype(int)
    selector = FeatureSelector("binary", keep=0.5, method="mi", seed=0, protect=("cat",)).fit(X, y)
    assert "copy" in selector.dropped_ or "signal" in selector.dropped_  # one of the twins goes
    assert "cat" in selector.columns_ and "noise" not in selector.columns_
    assert list(selector.transform(X).columns) == selector.columns_
    every = FeatureSelector("regression", keep=1.0, method="model", seed=0).fit(X, signal)
    assert set(every.columns_) == set(X.columns) - set(every.dropped_) and len(every.dropped_) == 1


def _table() -> tuple[pd.DataFrame, np.ndarray, Schema]:
    frame = make_frame(300, "binary", seed=4)
    frame["shop"] = [f"s{i % 25}" for i in range(len(frame))]  # high cardinality
    y = frame.pop("y")
    schema = Schema(target="y", task="binary", rows=300, columns={c: "" for c in frame.columns},
                    classes=["no", "yes"])
    return frame, encode_target(y, schema), schema


def test_the_plan_offers_construction_and_selection_only_when_enabled() -> None:
    frame, _, _ = _table()
    plan = plan_preprocessing(frame, PreprocessConfig())
    on = plan_features(plan, FeaturesConfig())
    assert on.numeric == ["x1", "x2"] and on.high_cardinality == ["shop"]
    assert set(feature_space(on)) == {"construct", "keep", "select"}
    off = plan_features(plan, FeaturesConfig(construct=False, select=False))
    assert feature_space(off) == {}


@pytest.mark.parametrize("family", FAMILIES)
def test_every_family_fits_raw_rows_with_constructed_and_selected_features(family: str) -> None:
    from tabpilot.families import REGISTRY
    from tabpilot.search.spaces import DEFAULTS

    frame, y, _ = _table()
    plan = plan_preprocessing(frame, PreprocessConfig())
    fplan = plan_features(plan, FeaturesConfig())
    settings = {"construct": True, "keep": 0.5, "select": "model"}
    model = make_pipeline({"family": family, "params": DEFAULTS[family], "features": settings}, plan, fplan,
                          PreprocessConfig(), "binary", 0).fit(frame, y)
    made = list(model.named_steps["preprocess"].get_feature_names_out())
    assert any("*" in name for name in made) and {"shop__freq", "shop__target"} <= set(made)
    if REGISTRY[family].every_level:  # a column per level of "shop", sparse: nothing selects among them
        assert "select" not in model.named_steps
        assert sum(name.startswith("shop_") for name in made) == plan.columns["shop"].levels + 2  # + freq, target
    else:
        kept = list(model.named_steps["select"].columns_)
        assert 0 < len(kept) < len(made)
    unseen = frame.head(5).assign(shop="never-seen", x1=np.nan)
    proba = model.predict_proba(unseen)
    assert proba.shape == (5, 2) and np.isfinite(proba).all()


def test_the_search_proposes_feature_settings_and_replays_given_ones() -> None:
    space = {"construct": ("choice", [False, True]), "keep": ("choice", [1.0, 0.5]),
             "select": ("choice", ["mi", "model"])}
    tpe = HyperoptSearch(("linear", "hist_gb"), seed=0, startup_trials=2, rows=300, features=space)
    _, plain = tpe.suggest_point({"family": "linear", "params": {"C": 1.0, "class_weight": None}})
    assert "features" not in plain  # a default stays the plain pipeline
    given = {"construct": True, "keep": 0.5, "select": "model"}
    _, replayed = tpe.suggest_point({"family": "hist_gb", "params": DEFAULTS_HGB, "features": given})
    assert replayed["features"] == given
    seen = []
    for loss in range(12):
        tid, candidate = tpe.ask()
        settings = {**PLAIN, **candidate.get("features", {})}
        assert settings["keep"] in (1.0, 0.5) and settings["construct"] in (False, True)
        seen.append(settings != PLAIN)
        tpe.tell(tid, float(loss))
    assert any(seen) and not all(seen)


DEFAULTS_HGB = {"learning_rate": 0.1, "max_leaf_nodes": 31, "min_samples_leaf": 20, "l2_regularization": 1e-6,
                "max_features": 1.0}
