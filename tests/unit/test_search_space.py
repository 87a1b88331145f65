"""Every family's space samples into estimators that fit raw rows with missing values and unseen levels."""
import numpy as np
import pandas as pd
import pytest

from tabpilot.core.config import FAMILIES, FeaturesConfig, PreprocessConfig
from tabpilot.data.features import DateParts, TextStats, plan_features
from tabpilot.data.files import normalise
from tabpilot.data.preprocessing import plan_preprocessing
from tabpilot.search.estimators import BUILDERS, Context, make_pipeline
from tabpilot.search.hpo import HyperoptSearch
from tabpilot.search.spaces import DEFAULTS, SPACES, Scaled, applicable, cast, space_for
from tests.helpers import make_frame


def test_every_family_has_a_space_a_default_and_a_builder() -> None:
    assert set(SPACES) == set(DEFAULTS) == set(BUILDERS) == set(FAMILIES)
    for family, space in SPACES.items():
        assert set(DEFAULTS[family]) == set(space), family


@pytest.mark.parametrize("task", ["binary", "multiclass", "regression"])
@pytest.mark.parametrize("family", FAMILIES)
def test_sampled_configs_fit_and_predict(family: str, task: str) -> None:
    frame = normalise(make_frame(120, task))
    y = frame.pop("y")
    y = y.to_numpy(dtype=float) if task == "regression" else np.unique(y, return_inverse=True)[1]
    plan = plan_preprocessing(frame, PreprocessConfig())
    search = HyperoptSearch((family,), seed=3, rows=len(frame))
    unseen = frame.head(5).copy()
    unseen.loc[unseen.index[0], "colour"] = "purple"
    unseen.loc[unseen.index[1], "x1"] = np.nan
    for _ in range(2):
        _, candidate = search.ask()
        params = dict(candidate["params"])
        if "n_estimators" in params:
            params["n_estimators"] = min(params["n_estimators"], 20)
        if family == "hist_gb":  # its rounds follow the learning rate: up to 500 per class
            params["learning_rate"] = max(params["learning_rate"], 0.2)
        model = make_pipeline({"family": family, "params": params}, plan, plan_features(plan, FeaturesConfig()),
                              PreprocessConfig(), task, 0)
        model.fit(frame, y)
        out = model.predict(unseen) if task == "regression" else model.predict_proba(unseen)
        assert np.isfinite(out).all() and len(out) == 5


def test_cast_makes_integer_dimensions_ints() -> None:
    params = cast("xgboost", {"n_estimators": 99.6, "max_depth": 3.0, "learning_rate": 0.1})
    assert params == {"n_estimators": 100, "max_depth": 3, "learning_rate": 0.1}
    assert isinstance(params["max_depth"], int)


def test_feature_transformers_clone_fit_and_take_unseen_rows() -> None:
    import pickle

    from sklearn.base import clone

    dates = pd.DataFrame({"when": ["2024-01-05", "2024-03-10 14:00", None, "2025-12-31"]})
    text = pd.DataFrame({"note": ["late delivery again", "late again", None, "fine delivery"]})
    for transformer, frame in ((DateParts(), dates), (TextStats(max_tokens=3), text)):
        fresh = clone(transformer)
        assert fresh.fit(frame) is fresh
        out = pickle.loads(pickle.dumps(fresh)).transform(frame.iloc[[2, 0]])
        assert list(out.columns) == list(fresh.get_feature_names_out())
        assert out.shape[0] == 2
    parts = DateParts().fit(dates).transform(dates)
    assert parts["when__year"].tolist()[:2] == [2024.0, 2024.0] and parts["when__hour"].iloc[1] == 14
    assert parts["when__elapsed_days"].iloc[0] == 0.0 and np.isnan(parts["when__year"].iloc[2])


def test_equal_text_fits_from_different_processes_hash_alike() -> None:
    """TfidfVectorizer keeps id(stop_words), which differs between the search's worker processes;
    an ensemble shares preprocessors by hash, so equal fits must hash equal wherever they ran."""
    import joblib

    text = pd.DataFrame({"note": ["late delivery again", "late again", None, "fine delivery"]})
    here, there = TextStats(max_tokens=3).fit(text), TextStats(max_tokens=3).fit(text)
    there.vectorizers_["note"]._stop_words_id = 12345  # as another process leaves it
    assert joblib.hash(here) == joblib.hash(there)
    assert (here.transform(text) == there.transform(text)).all().all()


def test_bounds_scale_with_the_number_of_rows() -> None:
    small, large = space_for("knn", 200), space_for("knn", 100_000)
    assert small["n_neighbors"] == ("logint", 2, 10.0) and large["n_neighbors"] == ("logint", 2, 100.0)
    assert Scaled(0.01, 5, 50).at(2_000) == 20.0
    assert "svm" in applicable(FAMILIES, 5_000) and "svm" not in applicable(FAMILIES, 50_000)


def test_a_family_joins_the_search_from_its_row_count() -> None:
    enabled = ("hist_gb", "xgboost")
    assert applicable(enabled, 99_999, {"lightgbm": 100_000}) == enabled
    assert applicable(enabled, 100_000, {"lightgbm": 100_000}) == ("hist_gb", "xgboost", "lightgbm")
    assert applicable(("lightgbm",), 10, {"lightgbm": 100_000}) == ("lightgbm",)  # named: searched at any size
    assert applicable(enabled, 100_000, {"svm": 10}) == enabled  # still past its own row limit


def test_stored_configs_clip_to_integers_and_gain_parameters_added_since() -> None:
    from tabpilot.search.spaces import clip_to_space, fits_space

    # As the shipped portfolio stores it: no early_stopping, a leaf size above this table's bound.
    stored = {"family": "hist_gb", "params": {"learning_rate": 0.05, "max_leaf_nodes": 15, "min_samples_leaf": 300,
                                              "l2_regularization": 0.1, "max_features": 0.8}}
    assert fits_space(stored)
    params = clip_to_space("hist_gb", stored["params"], 1_650)
    assert params["min_samples_leaf"] == 33 and isinstance(params["min_samples_leaf"], int)
    assert params["early_stopping"] is True
    model = BUILDERS["hist_gb"](params, Context("regression", 0))
    model.fit(np.random.default_rng(0).normal(size=(200, 3)), np.arange(200.0))  # the 33.0 float was refused
    assert not fits_space({"family": "hist_gb", "params": {**params, "early_stopping": "sometimes"}})


def test_hist_gb_is_also_tried_as_scikit_learn_ships_it() -> None:
    from tabpilot.search.spaces import defaults_in_order

    tried = [c["params"] for c in defaults_in_order(("linear", "hist_gb"), 1_000) if c["family"] == "hist_gb"]
    assert [p["early_stopping"] for p in tried] == [True, False]
    shipped = BUILDERS["hist_gb"](tried[1], Context("regression", 0))
    assert shipped.early_stopping is False and shipped.max_iter == 100  # scikit-learn's default below 10k rows
    slow = BUILDERS["hist_gb"]({**tried[1], "learning_rate": 0.01}, Context("regression", 0))
    assert slow.max_iter == 500 and BUILDERS["hist_gb"](tried[0], Context("regression", 0)).early_stopping is True


@pytest.mark.parametrize(("columns", "sampled", "seen"),
                         [(2, 0.3, 1.0), (3, 0.3, 2.5 / 3), (20, 0.3, 0.3), (20, 0.9, 0.9)])
def test_every_xgboost_tree_sees_at_least_two_columns(columns: int, sampled: float, seen: float) -> None:
    model = BUILDERS["xgboost"]({**DEFAULTS["xgboost"], "colsample_bytree": sampled}, Context("binary", 0, (), columns))
    model = model.estimator  # inside NativeCategorical, which stops large fits early
    assert model.colsample_bytree == pytest.approx(seen)
    # XGBoost's own count of a tree's columns, floor(share x columns), in the float32 it stores the share in
    assert int(np.float32(model.colsample_bytree) * np.float32(columns)) >= min(2, columns)


def test_a_family_declared_once_is_in_every_registry_the_search_reads() -> None:
    from tabpilot.core.config import FAMILIES
    from tabpilot.families import REGISTRY
    from tabpilot.search.estimators import DENSE_FAMILIES
    from tabpilot.search.spaces import COST_ORDER

    assert FAMILIES == tuple(REGISTRY)
    assert set(SPACES) == set(DEFAULTS) == set(BUILDERS) == set(COST_ORDER) == set(FAMILIES)
    assert len(COST_ORDER) == len({REGISTRY[f].cost_rank for f in FAMILIES})  # no two share a place
    assert DENSE_FAMILIES == {f for f in FAMILIES if REGISTRY[f].dense}
    for name, family in REGISTRY.items():
        assert family.name == name and set(family.default) == set(family.space), name


@pytest.mark.parametrize("task", ["binary", "regression"])
def test_linear_models_learn_an_effect_for_every_level_of_a_many_level_column(task: str) -> None:
    rng = np.random.default_rng(0)
    levels = [f"site{i}" for i in range(60)]  # past max_onehot_levels (20): pooled for the other dense families
    effect = dict(zip(levels, rng.normal(0, 2, len(levels)), strict=True))
    site = rng.choice(levels, 3000)
    frame = normalise(pd.DataFrame({"site": site, "x": rng.normal(size=3000)}))
    signal = np.array([effect[s] for s in site]) + 0.5 * frame["x"].to_numpy()
    y = signal + rng.normal(0, 0.3, 3000) if task == "regression" else (signal > 0).astype(int)
    plan = plan_preprocessing(frame, PreprocessConfig())
    features = plan_features(plan, FeaturesConfig())
    params = {"C": 10.0, "class_weight": None}
    linear = make_pipeline({"family": "linear", "params": params, "features": {"keep": 0.5}}, plan, features,
                           PreprocessConfig(), task, 0).fit(frame, y)
    mlp = make_pipeline({"family": "mlp", "params": DEFAULTS["mlp"]}, plan, features, PreprocessConfig(), task, 0)
    assert [name for name, _ in linear.steps] == ["preprocess", "model"]  # no selection on a sparse matrix
    matrix = linear[0].transform(frame.head(5))
    assert hasattr(matrix, "tocsr") and matrix.shape[1] >= 60 + 1
    assert mlp[0].fit(frame, y).transform(frame.head(5)).shape[1] <= 20 + 2
    unseen = frame.head(3).assign(site="a site never seen")
    out = linear.predict(unseen) if task == "regression" else linear.predict_proba(unseen)[:, 1]
    assert np.isfinite(out).all()
    fitted = linear.predict(frame) if task == "regression" else linear.decision_function(frame)
    assert np.corrcoef(fitted, signal)[0, 1] > (0.95 if task == "regression" else 0.85)
