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


def test_xgboost_without_categorical_columns_is_xgboost_itself() -> None:
    model = BUILDERS["xgboost"]({**DEFAULTS["xgboost"]}, Context("regression", 0))
    assert type(model).__name__ == "XGBRegressor"
