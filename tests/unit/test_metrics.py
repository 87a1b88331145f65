"""The numpy AUC and log loss equal scikit-learn's, on ties, certainties and every class count."""
import numpy as np
import pytest
from sklearn import metrics as skm

from tabpilot.core.metrics import resolve


@pytest.mark.parametrize("seed", range(5))
def test_binary_auc_equals_scikit_learns_with_ties(seed: int) -> None:
    rng = np.random.default_rng(seed)
    y = rng.integers(0, 2, 500)
    score = rng.random(500).round(1)  # many ties
    proba = np.column_stack([1 - score, score])
    assert resolve("roc_auc", "binary").score(y, proba) == pytest.approx(skm.roc_auc_score(y, score), abs=1e-12)


def test_binary_auc_of_one_class_raises_as_scikit_learn_does() -> None:
    with pytest.raises(ValueError, match="Only one class"):
        resolve("roc_auc", "binary").score(np.ones(10, dtype=int), np.full((10, 2), 0.5))


@pytest.mark.parametrize("classes", [2, 3, 7])
def test_log_loss_equals_scikit_learns_with_zeros_and_unnormalised_rows(classes: int) -> None:
    rng = np.random.default_rng(classes)
    y = rng.integers(0, classes, 400)
    proba = rng.dirichlet(np.ones(classes), 400) * 1.3  # rows that do not sum to one
    proba[:20, :] = 0.0
    proba[:10, 0] = 1.0  # certain, and wrong where y != 0
    clipped = np.clip(proba, 1e-15, 1)
    expected = skm.log_loss(y, clipped / clipped.sum(axis=1, keepdims=True), labels=np.arange(classes))
    assert resolve("log_loss", "multiclass").score(y, proba) == pytest.approx(expected, rel=1e-12)
