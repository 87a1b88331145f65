from typing import Any

import numpy as np
import pandas as pd
import pytest
from sklearn.base import clone
from sklearn.dummy import DummyClassifier, DummyRegressor
from sklearn.preprocessing import StandardScaler

from tabpilot.core.metrics import resolve
from tabpilot.ensemble.model import EnsembleModel, apply_temperature, caruana_select, fit_temperature
from tabpilot.search.fold_bag import FoldBag
from tests.helpers import REPO


def test_caruana_matches_a_hand_checked_case() -> None:
    # Regression, RMSE. Trial 1 overshoots, trial 2 undershoots by the same amount, trial 3 is poor.
    y = np.array([0.0, 1.0, 2.0, 3.0])
    oof = {1: y + 1.0, 2: y - 1.0, 3: y + 3.0}
    # Round 1: trials 1 and 2 tie at RMSE 1; the lower id wins -> [1].
    # Round 2: adding 2 gives the exact mean y (RMSE 0) -> [1, 2], the best point.
    # Later rounds can only move away from 0, so the trajectory is cut back to size 2.
    weights = caruana_select(oof, y, resolve("rmse", "regression"), rounds=10)
    assert weights == {1: 0.5, 2: 0.5}


def test_caruana_selects_with_replacement() -> None:
    # Averaging 2 parts of trial 1 with 1 part of trial 2 hits the target exactly.
    y = np.array([1.0, 1.0])
    oof = {1: np.array([1.5, 1.5]), 2: np.array([0.0, 0.0])}
    weights = caruana_select(oof, y, resolve("mae", "regression"), rounds=3)
    assert weights == pytest.approx({1: 2 / 3, 2: 1 / 3})


def test_caruana_never_worse_than_best_single_trial() -> None:
    rng = np.random.default_rng(0)
    y = rng.integers(0, 2, 300)
    oof = {t: np.column_stack([1 - p, p]) for t, p in
           ((t, np.clip(y * 0.3 + rng.uniform(0, 0.7, 300), 0, 1)) for t in range(6))}
    metric = resolve("log_loss", "binary")
    weights = caruana_select(oof, y, metric, rounds=20)
    blend = sum(w * oof[t] for t, w in weights.items())
    assert metric.score(y, blend) <= min(metric.score(y, p) for p in oof.values()) + 1e-12
    assert sum(weights.values()) == pytest.approx(1.0)


def test_ensemble_model_averages_members_and_names_columns_by_class() -> None:
    X = pd.DataFrame({"a": [0, 1, 2, 3]})
    y = np.array([0, 1, 1, 1])
    members = [DummyClassifier(strategy="prior").fit(X, y), DummyClassifier(strategy="uniform").fit(X, y)]
    model = EnsembleModel(members, [3, 1], "binary", ["no", "yes"]).fit()
    proba = model.predict_proba(X)
    assert proba[0] == pytest.approx([0.75 * 0.25 + 0.25 * 0.5, 0.75 * 0.75 + 0.25 * 0.5])
    frame = model.predict_frame(X)
    assert list(frame.columns) == ["prediction", "proba_no", "proba_yes"]
    assert (frame["prediction"] == "yes").all()
    assert clone(model).get_params()["weights"] == [3, 1]


def test_ensemble_needs_matching_members_and_weights() -> None:
    with pytest.raises(ValueError):
        EnsembleModel([DummyClassifier()], [0.5, 0.5]).fit()


def test_temperature_fixes_overconfident_probabilities() -> None:
    rng = np.random.default_rng(1)
    y = rng.integers(0, 3, 2000)
    honest = np.full((2000, 3), 0.2)
    honest[np.arange(2000), y] = 0.6  # right 60% of the time if argmax; calibrated-ish
    noisy_y = np.where(rng.random(2000) < 0.5, y, rng.integers(0, 3, 2000))
    sharp = apply_temperature(honest, 0.3)  # far too confident for labels that are often wrong
    metric = resolve("log_loss", "multiclass")
    t = fit_temperature(sharp, noisy_y)
    assert t > 1.5
    assert metric.score(noisy_y, apply_temperature(sharp, t)) < metric.score(noisy_y, sharp)
    assert (apply_temperature(sharp, t).argmax(1) == sharp.argmax(1)).all()  # ranking unchanged


def test_stacking_learns_what_a_blend_cannot() -> None:
    """Member 1 is right, member 2 is its mirror image: a stacker inverts 2, a blend cannot."""
    from sklearn.model_selection import StratifiedKFold

    from tabpilot.ensemble.model import make_stacker, stack_features, stacking_oof

    rng = np.random.default_rng(0)
    y = rng.integers(0, 2, 400)
    p = np.clip(0.5 + (y - 0.5) * rng.uniform(0.1, 0.8, 400), 0.01, 0.99)
    good, mirrored = np.column_stack([1 - p, p]), np.column_stack([p, 1 - p])
    folds = list(StratifiedKFold(5, shuffle=True, random_state=0).split(good, y))
    metric = resolve("roc_auc", "binary")
    stacked = stacking_oof([mirrored, mirrored * 0 + 0.5], y, "binary", folds, 0)
    assert metric.score(y, stacked) > 0.95 > metric.score(y, mirrored)
    stacker = make_stacker("binary", 0).fit(stack_features([good, mirrored], "binary"), y)
    members = [DummyClassifier(strategy="prior").fit([[0]] * 4, [0, 1, 1, 1])] * 2
    model = EnsembleModel(members, [1, 1], "binary", ["no", "yes"], stacker=stacker).fit()
    assert model.predict_proba(pd.DataFrame({"a": [0, 1]})).shape == (2, 2)


def test_a_fold_bag_averages_its_models() -> None:
    from sklearn.linear_model import LinearRegression, LogisticRegression

    X = pd.DataFrame({"x": [0.0, 1.0, 2.0, 3.0]})
    # y = x and y = 3x: their average at x is 2x
    bag = FoldBag([LinearRegression().fit(X, [0, 1, 2, 3]), LinearRegression().fit(X, [0, 3, 6, 9])]).fit()
    np.testing.assert_allclose(bag.predict(pd.DataFrame({"x": [1.0, 5.0]})), [2.0, 10.0])
    classifiers = [LogisticRegression().fit(X, [0, 0, 1, 1]), LogisticRegression(C=0.01).fit(X, [0, 0, 1, 1])]
    expected = (classifiers[0].predict_proba(X) + classifiers[1].predict_proba(X)) / 2
    np.testing.assert_allclose(FoldBag(classifiers).fit().predict_proba(X), expected)
    with pytest.raises(ValueError):
        FoldBag([]).fit()


class CountingScaler(StandardScaler):
    """A scaler that counts the rows-to-features passes made through any instance."""
    calls = 0

    def transform(self, X: Any, copy: Any = None) -> Any:
        CountingScaler.calls += 1
        return super().transform(X, copy=copy)


def test_pipelines_with_identical_fitted_preprocessors_share_one_and_run_it_once() -> None:
    from sklearn.linear_model import LinearRegression, Ridge
    from sklearn.pipeline import make_pipeline

    rng = np.random.default_rng(0)
    X = pd.DataFrame({"a": rng.normal(size=40), "b": rng.normal(size=40)})
    y = X["a"] * 2 - X["b"] + rng.normal(scale=0.1, size=40)
    rows = np.arange(40) < 30  # two folds' worth of different rows
    # Two bags as the search leaves them: per fold, separately fitted (equal) preprocessors.
    bags = [FoldBag([make_pipeline(CountingScaler(), model()).fit(X[part], y[part]) for part in (rows, ~rows)]).fit()
            for model in (LinearRegression, lambda: Ridge(alpha=5.0))]
    single = make_pipeline(CountingScaler(), LinearRegression()).fit(X.iloc[:20], y.iloc[:20])  # other rows
    expected = 0.5 * bags[0].predict(X) + 0.25 * bags[1].predict(X) + 0.25 * single.predict(X)
    model = EnsembleModel([*bags, single], [2, 1, 1], "regression").fit()
    assert model.preprocessors_ == 3  # one per distinct set of rows
    assert bags[0].models[0].steps[0][1] is bags[1].models[0].steps[0][1]
    assert bags[0].models[1].steps[0][1] is bags[1].models[1].steps[0][1]
    CountingScaler.calls = 0
    np.testing.assert_allclose(model.predict(X), expected)
    assert CountingScaler.calls == 3  # 5 pipelines, 3 distinct preprocessors


class ThreadRecorder(DummyRegressor):
    """Records the most threads any OpenMP/BLAS pool may use while it predicts, and which Python
    threads predicted how many rows."""

    def predict(self, X: Any, return_std: bool = False) -> Any:
        import threading

        from threadpoolctl import threadpool_info

        self.seen_threads_ = max(pool["num_threads"] for pool in threadpool_info())
        self.calls_ = [*getattr(self, "calls_", []), (threading.get_ident(), len(X))]
        return np.asarray(X["x"], dtype=float) * 2


def test_small_predictions_run_single_threaded_and_large_ones_in_chunks_on_every_core() -> None:
    import gc

    from threadpoolctl import threadpool_info

    from tabpilot.ensemble.model import CHUNK_ROWS, SINGLE_THREAD_ROWS, _cores

    available = max(pool["num_threads"] for pool in threadpool_info())
    member = ThreadRecorder().fit([[0.0]], [1.0])
    model = EnsembleModel([member], [1.0], "regression").fit()
    model.predict(pd.DataFrame({"x": [0.0]}))
    assert member.seen_threads_ == 1 and len(member.calls_) == 1
    for rows in (SINGLE_THREAD_ROWS, 3 * CHUNK_ROWS + 7):
        member.calls_ = []
        x = np.arange(rows, dtype=float)
        np.testing.assert_array_equal(model.predict(pd.DataFrame({"x": x})), 2 * x)  # in order, every row
        assert member.seen_threads_ == 1  # each chunk on one thread: the cores run chunks side by side
        sizes = [n for _, n in member.calls_]
        assert sum(sizes) == rows and max(sizes) <= CHUNK_ROWS and len(sizes) >= 2 * _cores()
        assert len({ident for ident, _ in member.calls_}) <= _cores()
    assert max(pool["num_threads"] for pool in threadpool_info()) == available  # restored
    assert gc.isenabled()


def test_the_stacker_converges_quickly_on_sharp_collinear_members() -> None:
    """Members that agree and are confident give log-probabilities that are nearly collinear and
    large: an unscaled logistic stacker needs hundreds of lbfgs iterations on them (223 here)."""
    from tabpilot.ensemble.model import make_stacker, stack_features

    rng = np.random.default_rng(0)
    n, k = 3000, 5
    y = rng.integers(0, k, n)
    logits = rng.normal(0, 1, (n, k))
    logits[np.arange(n), y] += 2.5
    members = []
    for _ in range(5):
        sharp = (logits + rng.normal(0, 0.3, (n, k))) * 8
        proba = np.exp(sharp - sharp.max(axis=1, keepdims=True))
        members.append(proba / proba.sum(axis=1, keepdims=True))
    stacker = make_stacker("multiclass", 0).fit(stack_features(members, "multiclass"), y)
    logistic = stacker[-1] if hasattr(stacker, "steps") else stacker
    assert logistic.n_iter_.max() < 60
    assert (stacker.predict(stack_features(members, "multiclass")) == y).mean() > 0.7


def test_a_library_loaded_after_the_first_prediction_is_limited_too() -> None:
    # In a process of its own, so that LightGBM's OpenMP is surely loaded after the pools were first found.
    import subprocess
    import sys

    code = """
import numpy as np, pandas as pd
from threadpoolctl import threadpool_info
from tabpilot.ensemble.model import EnsembleModel
from tests.unit.test_ensemble import ThreadRecorder
member = ThreadRecorder().fit([[0.0]], [1.0])
model = EnsembleModel([member], [1.0], "regression").fit()
model.predict(pd.DataFrame({"x": [0.0]}))
import lightgbm
lightgbm.LGBMRegressor(n_estimators=2, verbose=-1).fit(np.random.rand(50, 2), np.random.rand(50))
model.predict(pd.DataFrame({"x": [0.0]}))
print(member.seen_threads_, max(pool["num_threads"] for pool in threadpool_info()))
"""
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True,
                          cwd=REPO)
    seen, available = map(int, done.stdout.split())
    assert seen == 1 and available >= 1
