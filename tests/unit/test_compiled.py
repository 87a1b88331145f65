"""The compiled ensemble predicts what the ensemble predicts, for every family and every transformer
(within 1e-6: XGBoost's float32 sums through Treelite round differently, by up to 2e-7)."""
from __future__ import annotations

import pickle

import numpy as np
import pandas as pd
import pytest

from tabpilot.core.config import FAMILIES, FeaturesConfig, PreprocessConfig
from tabpilot.data.features import plan_features
from tabpilot.data.files import normalise
from tabpilot.data.preprocessing import plan_preprocessing
from tabpilot.ensemble.model import EnsembleModel
from tabpilot.search.estimators import make_pipeline
from tabpilot.search.fold_bag import FoldBag
from tabpilot.search.spaces import DEFAULTS
from tests.helpers import make_frame

SETTINGS = ({"construct": False, "keep": 1.0, "select": "mi"}, {"construct": True, "keep": 0.5, "select": "model"})


def _table(task: str, n: int = 240) -> tuple[pd.DataFrame, np.ndarray]:
    """Numbers with gaps, a small and a many-level category, dates and free text."""
    frame = make_frame(n, task, seed=5)
    rng = np.random.default_rng(5)
    frame["shop"] = [f"s{i % 30}" for i in range(n)]
    frame["when"] = pd.to_datetime("2024-01-01") + pd.to_timedelta(rng.integers(0, 900, n), unit="D")
    frame["note"] = [" ".join(rng.choice(["late", "fine", "broken", "again", "box", "red"], 4)) for _ in range(n)]
    frame.loc[rng.random(n) < 0.1, "colour"] = None
    y = frame.pop("y")
    target = y.to_numpy(dtype=float) if task == "regression" else np.unique(y, return_inverse=True)[1]
    return normalise(frame), target


def _fitted(task: str, family: str, settings: dict, frame: pd.DataFrame, y: np.ndarray) -> FoldBag:
    plan = plan_preprocessing(frame, PreprocessConfig())
    fplan = plan_features(plan, FeaturesConfig())
    params = dict(DEFAULTS[family])
    if "n_estimators" in params:
        params["n_estimators"] = 30
    halves = [np.arange(len(frame)) % 2 == k for k in (0, 1)]
    folds = [make_pipeline({"family": family, "params": params, "features": settings}, plan, fplan,
                           PreprocessConfig(), task, 0).fit(frame[rows], y[rows]) for rows in halves]
    return FoldBag(folds).fit()


def _unseen(frame: pd.DataFrame) -> pd.DataFrame:
    rows = frame.tail(20).copy()
    rows.iloc[0, rows.columns.get_loc("shop")] = "a shop never seen"
    rows.iloc[1, rows.columns.get_loc("colour")] = "purple"
    rows.iloc[2, rows.columns.get_loc("x1")] = np.nan
    rows.iloc[3, rows.columns.get_loc("note")] = None
    return rows


# Every family in each task takes a minute: the daily loop keeps the binary one (make test-fast)
@pytest.mark.parametrize("task", ["binary", pytest.param("multiclass", marks=pytest.mark.slow),
                                  pytest.param("regression", marks=pytest.mark.slow)])
def test_every_family_and_transformer_compiles_to_the_same_predictions(task: str) -> None:
    frame, y = _table(task)
    members = [_fitted(task, family, settings, frame, y) for family in FAMILIES for settings in SETTINGS]
    model = EnsembleModel(members, [1.0] * len(members), task, None if task == "regression" else
                          sorted(set(y.tolist()))).fit()
    method = model.predict if task == "regression" else model.predict_proba
    new = _unseen(frame)
    expected = method(new)
    # A batch large enough for each library's own predict and every thread, unseen levels and gaps in it.
    many = pd.concat([frame] * 5 + [new] * 3, ignore_index=True)
    expected_many = method(many)
    summary = model.compile(frame.head(30), seed=0)
    assert summary["pipelines"] == len(members) * 2
    # Every family's model and every encoder compile (constructed codes of categories, imputed and
    # scaled, as lookup tables too); only dates keep their fitted part.
    assert summary["compiled"] == summary["pipelines"], summary
    kept = {tuple(part.columns) for p in model.compiled_.preprocessors for part in p.parts
            if type(part).__name__ == "_Kept"}
    assert kept == {("when",)}, kept
    kinds = {f: {type(step.predict).__name__ for step in folds}
             for f, folds in zip([f for f in FAMILIES for _ in SETTINGS], model.compiled_.members, strict=True)}
    trees = ("random_forest", "extra_trees", "hist_gb", "lightgbm")
    assert all(kinds[f] == {"_Treelite"} for f in trees), kinds
    # XGBoost's own predict where Treelite's float32 sums differ from it by more than 1e-6
    assert kinds["xgboost"] <= {"_Treelite", "_XGBoost"} and kinds["xgboost"], kinds
    natives: dict[str, set[str]] = {}
    for f, folds in zip([f for f in FAMILIES for _ in SETTINGS], model.compiled_.members, strict=True):
        if f in ("hist_gb", "lightgbm"):
            natives.setdefault(f, set()).update(type(step.predict.native).__name__ for step in folds)
    # HistGradientBoosting's own tree walk, without its ColumnTransformer; LightGBM's booster on the codes
    assert natives == {"hist_gb": {"_HistGradientBoosting"}, "lightgbm": {"_LightGBM"}}, natives
    assert kinds["catboost"] == {"_Sklearn"}, kinds  # its categorical codes made integers by the wrapper
    fast = {"_Standardised"} if task == "regression" else None
    assert kinds["linear"] == (fast or {"_Linear"}) and kinds["mlp"] == (fast or {"_MLP"}), kinds
    got = method(new)
    np.testing.assert_allclose(got, expected, rtol=1e-6, atol=1e-6)
    loaded = pickle.loads(pickle.dumps(model))
    np.testing.assert_allclose(loaded.predict(new) if task == "regression" else loaded.predict_proba(new),
                               expected, rtol=1e-6, atol=1e-6)
    np.testing.assert_allclose(method(many), expected_many, rtol=1e-6, atol=1e-6)
    # compiled by another version of this code: predicted as before compiling, not an error
    model.compiled_.format = -1
    model.compiled_.preprocessors = None
    np.testing.assert_allclose(method(new), expected, rtol=1e-9, atol=1e-9)


def test_a_pipeline_that_compiles_differently_keeps_its_own_predict() -> None:
    from tabpilot.ensemble import fast_models

    frame, y = _table("binary")
    bag = _fitted("binary", "random_forest", SETTINGS[0], frame, y)
    model = EnsembleModel([bag], [1.0], "binary", [0, 1]).fit()
    expected = model.predict_proba(_unseen(frame))
    real = fast_models._adapter

    def wrong(estimator: object, method: str) -> object:
        fast = real(estimator, method)
        return lambda X, threads: fast(X, threads) * 0.5

    fast_models._adapter = wrong
    try:
        summary = model.compile(frame.head(30), seed=0)
    finally:
        fast_models._adapter = real
    # The wrong adapter is refused; the plain scikit-learn call on arrays is what compiles instead.
    assert summary["compiled"] == 2
    assert all(type(s.predict).__name__ == "_Sklearn" for s in model.compiled_.members[0])
    np.testing.assert_allclose(model.predict_proba(_unseen(frame)), expected, rtol=1e-6, atol=1e-6)


def test_an_xgboost_model_treelite_predicts_differently_keeps_xgboosts_own_inplace_predict(
        monkeypatch: pytest.MonkeyPatch) -> None:
    from tabpilot.ensemble import fast_models

    frame, y = _table("regression")
    model = EnsembleModel([_fitted("regression", "xgboost", SETTINGS[0], frame, y)], [1.0], "regression", None).fit()
    expected = model.predict(_unseen(frame))
    # As when Treelite's float32 sums of a long boosting run drift past the tolerance.
    monkeypatch.setattr(fast_models._Treelite, "gtil", lambda self, X, threads: np.zeros(len(X)))
    summary = model.compile(frame.head(30), seed=0)
    assert summary["compiled"] == 2
    assert all(type(s.predict).__name__ == "_XGBoost" for s in model.compiled_.members[0])
    np.testing.assert_allclose(model.predict(_unseen(frame)), expected, rtol=1e-9, atol=1e-9)


@pytest.mark.parametrize("family", FAMILIES)
def test_a_regressor_in_the_thousands_predicts_the_same_values_a_row_at_a_time_and_in_a_file(family: str) -> None:
    """A served row and a large file's row get the same value within 1e-6, not only within 1e-6 of
    its size: float32 sums in two orders (Treelite's and XGBoost's) differed by 3.7e-4 on values
    near 1,200 (cps1988), and `tabpilot serve` disagreed with `tabpilot predict`."""
    frame, y = _table("regression", n=400)
    y = 1000.0 + 300.0 * y
    model = EnsembleModel([_fitted("regression", family, SETTINGS[0], frame, y)], [1.0], "regression").fit()
    rows = pd.concat([frame] * 3, ignore_index=True)  # large enough for every library's own path
    model.compile(frame.head(30), seed=0)
    in_a_file = model.predict(rows)[:40]
    one_by_one = np.array([model.predict(rows.iloc[[i]])[0] for i in range(40)])
    # Except k-NN's: scikit-learn's distances come from BLAS products whose rounding depends on the
    # batch's shape, uncompiled as well (4e-8 of the value here). A known gap, bounded here.
    tolerance = {"rtol": 1e-7, "atol": 0} if family == "knn" else {"rtol": 0, "atol": 1e-6}
    np.testing.assert_allclose(one_by_one, in_a_file, **tolerance)



def test_a_column_for_every_level_compiles_to_a_sparse_lookup() -> None:
    frame, y = _table("binary")
    member = _fitted("binary", "linear", SETTINGS[0], frame, y)
    model = EnsembleModel([member], [1.0], "binary", [0, 1]).fit()
    new = _unseen(frame)  # an unseen shop, a gap in colour
    expected = model.predict_proba(new)
    assert model.compile(frame.head(30), seed=0)["compiled"] == 2
    parts = {type(part).__name__: part for part in model.compiled_.preprocessors[0].parts}
    assert parts["_Levels"].columns == ["shop"]  # 30 levels: more than one-hot takes in full by default
    matrix = model.compiled_.preprocessors[0].transform(new)
    assert hasattr(matrix, "tocsr") and matrix.shape[0] == len(new)
    np.testing.assert_allclose(model.predict_proba(new), expected, rtol=1e-9, atol=1e-12)
