"""Estimated prediction costs and the choice of members under a latency limit."""
import numpy as np
import pandas as pd
import pytest
from sklearn.ensemble import RandomForestClassifier
from sklearn.linear_model import LogisticRegression

from tabpilot.core.metrics import resolve
from tabpilot.ensemble.latency import Candidate, ensemble_cost, fit_under
from tabpilot.search.predict_cost import Cost, model_cost


def _forest(trees: int, depth: int | None) -> RandomForestClassifier:
    X, y = np.random.default_rng(0).normal(size=(300, 5)), np.arange(300) % 2
    return RandomForestClassifier(n_estimators=trees, max_depth=depth, random_state=0).fit(X, y)


def test_a_forest_costs_more_with_more_and_deeper_trees_and_a_linear_model_least() -> None:
    small, more, deeper = model_cost(_forest(10, 3)), model_cost(_forest(40, 3)), model_cost(_forest(10, None))
    assert small.batch_ms < more.batch_ms and small.batch_ms < deeper.batch_ms
    linear = model_cost(LogisticRegression().fit(np.eye(4), [0, 1, 0, 1]))
    assert linear.batch_ms < small.batch_ms and linear.one_ms < small.one_ms


def _candidates() -> dict[int, Candidate]:
    # trial 0: the best and dearest; 1 and 2 cheap, sharing their preprocessing; 3 refit (no folds)
    return {0: Candidate(0, Cost(0.2, 20.0), Cost(0.1, 1.0), 5, "a"),
            1: Candidate(1, Cost(0.05, 2.0), Cost(0.1, 1.0), 5, "b"),
            2: Candidate(2, Cost(0.05, 2.0), Cost(0.1, 1.0), 5, "b"),
            3: Candidate(3, Cost(0.05, 1.0), Cost(0.1, 1.0), 0, "c")}


def test_members_with_equal_preprocessing_share_it_fold_by_fold() -> None:
    c = _candidates()

    def costs(folds: dict[int, int]) -> tuple[float, float]:
        cost = ensemble_cost(c, folds)
        return cost.one_ms, cost.batch_ms

    assert costs({1: 2, 2: 2}) == pytest.approx((0.05 * 4 + 0.1 * 2, 2.0 * 4 + 1.0 * 2))
    assert costs({1: 2, 2: 3}) == pytest.approx((0.05 * 5 + 0.1 * 3, 2.0 * 5 + 1.0 * 3))
    # Cut to one of its five fold models, trial 1 is refit on the whole split: its preprocessing
    # is not the folds' and is counted beside theirs; refits share theirs with each other.
    assert costs({1: 1, 2: 3}) == pytest.approx((0.05 * 4 + 0.1 * 4, 2.0 * 4 + 1.0 * 4))
    assert costs({1: 1, 2: 1}) == pytest.approx((0.05 * 2 + 0.1, 2.0 * 2 + 1.0))
    assert costs({0: 1, 1: 1}) == pytest.approx((0.2 + 0.05 + 0.1 * 2, 20.0 + 2.0 + 1.0 * 2))  # a and b
    assert costs({3: 0}) == pytest.approx((0.15, 2.0))  # refit: one model


def _oof() -> tuple[dict[int, np.ndarray], np.ndarray]:
    rng = np.random.default_rng(1)
    y = rng.integers(0, 2, 400)
    noise = {0: 0.6, 1: 0.9, 2: 0.9, 3: 1.2}
    oof = {}
    for t, s in noise.items():
        p = 1 / (1 + np.exp(-(2 * y - 1 + rng.normal(scale=s * 2, size=400))))
        oof[t] = np.column_stack([1 - p, p])
    return oof, y


@pytest.mark.parametrize("batch_ms", [5.0, 12.0, 30.0, 1000.0])
def test_fit_under_keeps_what_fits_and_gives_fold_models_back_while_they_fit(batch_ms: float) -> None:
    oof, y = _oof()
    c, metric = _candidates(), resolve("roc_auc", "binary")
    weights = {0: 0.5, 1: 0.25, 2: 0.25}
    limit = Cost(np.inf, batch_ms, np.inf)
    chosen, folds = fit_under(weights, oof, y, metric, 10, c, limit)
    assert ensemble_cost(c, folds).within(limit)
    assert set(folds) == set(chosen) and sum(chosen.values()) == pytest.approx(1.0)
    if batch_ms == 1000.0:  # everything fits: the unconstrained choice, every fold model
        assert chosen == weights and folds == {0: 5, 1: 5, 2: 5}
    else:  # no fold model more would fit
        for t in folds:
            if 0 < folds[t] < c[t].folds:
                assert not ensemble_cost(c, folds | {t: folds[t] + 1}).within(limit)
    if batch_ms == 5.0:  # the best trial (21 ms alone) cannot be a member
        assert 0 not in chosen


def test_when_no_model_fits_alone_the_cheapest_is_the_ensemble() -> None:
    oof, y = _oof()
    limit = Cost(np.inf, 0.5, np.inf)
    chosen, folds = fit_under({0: 1.0}, oof, y, resolve("roc_auc", "binary"), 10, _candidates(), limit)
    assert chosen == {3: 1.0} and folds == {3: 0}


def test_a_size_limit_counts_each_fold_model_and_shared_preprocessing_once() -> None:
    oof, y = _oof()
    sized = {t: Candidate(c.trial, Cost(c.model.one_ms, c.model.batch_ms, 2.0 if t == 0 else 0.2),
                          Cost(c.preprocess.one_ms, c.preprocess.batch_ms, 0.1), c.folds, c.key)
             for t, c in _candidates().items()}
    assert ensemble_cost(sized, {1: 2, 2: 3}).mb == pytest.approx(0.2 * 5 + 0.1 * 3)
    limit = Cost(np.inf, np.inf, 1.0)  # 1 MB: trial 0 (2 MB a model) can be no member
    chosen, folds = fit_under({0: 0.5, 1: 0.25, 2: 0.25}, oof, y, resolve("roc_auc", "binary"), 10, sized, limit)
    assert 0 not in chosen and ensemble_cost(sized, folds).within(limit)
    assert not ensemble_cost(sized, folds | {1: folds[1] + 1}).within(limit)


def test_a_column_for_every_level_costs_a_lookup_per_input_column_not_per_level() -> None:
    from tabpilot.core.config import PreprocessConfig
    from tabpilot.data.preprocessing import build_preprocessor, plan_preprocessing
    from tabpilot.search.predict_cost import preprocessor_cost

    rng = np.random.default_rng(0)
    frame = pd.DataFrame({"site": pd.Series([f"s{i}" for i in rng.integers(0, 2000, 5000)], dtype="category"),
                          "x": rng.normal(size=5000)})
    plan = plan_preprocessing(frame, PreprocessConfig())
    levels = build_preprocessor(plan, "dense", PreprocessConfig(), every_level=True).fit(frame)
    pooled = build_preprocessor(plan, "dense", PreprocessConfig()).fit(frame)
    assert len(levels.get_feature_names_out()) > 1500 and len(pooled.get_feature_names_out()) < 25
    assert preprocessor_cost(levels).one_ms < 2 * preprocessor_cost(pooled).one_ms + 0.5
