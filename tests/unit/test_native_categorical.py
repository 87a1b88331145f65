"""LightGBM, CatBoost and XGBoost get the categorical columns as categories, through clone, pickle and predict."""
import pickle

import numpy as np
import pandas as pd
import pytest
from sklearn.base import clone, is_classifier, is_regressor

from tabpilot.search.estimators import BUILDERS, Context
from tabpilot.search.spaces import DEFAULTS


def _codes(n: int = 400) -> tuple[pd.DataFrame, np.ndarray]:
    """A number, and a 12-level category (ordinal codes, NaN for gaps) whose effect is not monotone in its
    code: only levels 3 and 8 raise the target."""
    rng = np.random.default_rng(0)
    level = rng.integers(0, 12, n).astype(float)
    level[rng.random(n) < 0.05] = np.nan
    x = rng.normal(size=n)
    y = (np.isin(level, [3, 8]) ^ (rng.random(n) < 0.05)).astype(int)
    return pd.DataFrame({"x": x, "shop": level}), y


@pytest.mark.parametrize("family", ["lightgbm", "catboost", "xgboost"])
def test_the_named_columns_are_the_models_categories(family: str) -> None:
    X, y = _codes()
    params = {**DEFAULTS[family], "iterations" if family == "catboost" else "n_estimators": 100}
    model = BUILDERS[family](params, Context("binary", 0, ("shop",))).fit(X, y)
    assert model.positions_ == [1] and is_classifier(model) and list(model.classes_) == [0, 1]
    if family == "lightgbm":
        trees = model.estimator_.booster_.dump_model()["tree_info"]

        def splits(node: dict) -> list[str]:
            if "split_index" not in node:
                return []
            return [node["decision_type"]] + splits(node["left_child"]) + splits(node["right_child"])
        assert "==" in {d for t in trees for d in splits(t["tree_structure"])}  # a category split
    elif family == "xgboost":
        assert model.estimator_.get_booster().feature_types == ["q", "c"]
    else:
        assert model.estimator_.get_cat_feature_indices() == [1]
    # Two levels out of twelve, in no order of the codes: categories find them where a number split would not.
    proba = model.predict_proba(pd.DataFrame({"x": [0.0] * 4, "shop": [3.0, 8.0, 4.0, np.nan]}))[:, 1]
    assert proba[0] > 0.8 and proba[1] > 0.8 and proba[2] < 0.2 and np.isfinite(proba[3])
    again = pickle.loads(pickle.dumps(clone(model).fit(X, y)))
    np.testing.assert_allclose(again.predict_proba(X), model.predict_proba(X))  # same seed, same model


@pytest.mark.parametrize("family", ["lightgbm", "catboost"])
def test_without_categorical_columns_and_for_regression_they_fit_as_plain_regressors(family: str) -> None:
    X, y = _codes()
    model = BUILDERS[family]({**DEFAULTS[family]}, Context("regression", 0)).fit(X, y.astype(float) * 10)
    assert model.positions_ == [] and is_regressor(model) and not hasattr(model, "predict_proba")
    assert model.predict(X).shape == (len(X),)


def _trees(model: object) -> int:
    fitted = model.estimator_  # type: ignore[attr-defined]
    return fitted.get_booster().num_boosted_rounds() if hasattr(fitted, "get_booster") else fitted.booster_.num_trees()


@pytest.mark.parametrize("family", ["lightgbm", "xgboost"])
@pytest.mark.parametrize("task", ["binary", "regression"])
def test_a_large_fit_stops_early_and_keeps_only_its_best_trees(family: str, task: str) -> None:
    import treelite
    import treelite.gtil

    X, y = _codes()
    target = y if task == "binary" else y * 10.0
    params = {**DEFAULTS[family], "n_estimators": 400, "learning_rate": 0.3}
    model = BUILDERS[family](params, Context(task, 0, ("shop",)))
    assert _trees(clone(model).fit(X, target)) == 400  # fewer rows than early_stop_rows: every tree asked for
    stopped = model.set_params(early_stop_rows=len(X)).fit(X, target)
    assert _trees(stopped) < 400
    # The trees after the best are gone, not only skipped by the library's predict: Treelite (which
    # serves small batches) reads the same model.
    fitted = stopped.estimator_
    converted = treelite.frontend.from_xgboost(fitted.get_booster()) if family == "xgboost" else \
        treelite.frontend.from_lightgbm(fitted.booster_)
    codes = np.asarray(X, dtype=np.float32 if family == "xgboost" else np.float64)
    served = treelite.gtil.predict(converted, codes).reshape(len(X), -1)[:, -1]
    own = stopped.predict_proba(X)[:, 1] if task == "binary" else stopped.predict(X)
    np.testing.assert_allclose(served, own, rtol=1e-5, atol=1e-5)
    again = pickle.loads(pickle.dumps(clone(stopped).fit(X, target)))  # seeded: the same rows stop it
    assert _trees(again) == _trees(stopped)
