"""The PyTorch MLP (families torch_mlp and torch_darts): it learns, from numbers with gaps and
categorical codes with unseen levels, reproducibly; DARTS picks an architecture from its weights; the
hypergradients move the learning rate and weight decay the way their gradients say (issue 21)."""
from __future__ import annotations

import pickle

import numpy as np
import pandas as pd
import pytest
from sklearn.metrics import roc_auc_score

from tabpilot.families import torch_mlp
from tabpilot.families.darts import OPERATIONS
from tabpilot.families.net_blocks import ACTIVATIONS, NORMS, parse_architecture
from tabpilot.families.neural_net import LogAdam, TabularNet


def _table(n: int = 600, seed: int = 0) -> tuple[pd.DataFrame, np.ndarray, np.ndarray]:
    """Two numbers (one with gaps), a categorical code column whose level moves the target."""
    rng = np.random.default_rng(seed)
    x1, x2 = rng.normal(size=n), rng.exponential(size=n)
    level = rng.integers(0, 8, n).astype(float)
    signal = x1 + np.log1p(x2) + np.where(level % 2 == 0, 1.0, -1.0)
    frame = pd.DataFrame({"x1": x1, "x2": x2, "shop": level})
    frame.loc[rng.random(n) < 0.1, "x2"] = np.nan
    binary = (signal + rng.normal(scale=0.5, size=n) > 0).astype(int)
    return frame, binary, signal + rng.normal(scale=0.3, size=n)


def test_the_family_declarations_name_what_torch_has() -> None:
    assert torch_mlp.ACTIVATIONS == list(ACTIVATIONS) and torch_mlp.NORMS == list(NORMS)
    assert parse_architecture("256:relu,32:tanh") == [(256, "relu"), (32, "tanh")] and parse_architecture("") == []
    with pytest.raises(ValueError, match="width:activation"):
        parse_architecture("256:sigmoid")


@pytest.mark.parametrize("architecture", ["64:relu,32:gelu", "darts"])
def test_it_learns_uses_the_categories_and_scores_gaps_and_unseen_levels(architecture: str) -> None:
    frame, y, _ = _table()
    net = TabularNet(categorical=("shop",), architecture=architecture, seed=3, darts_epochs=5)
    net.fit(frame.iloc[:450], y[:450])
    proba = net.predict_proba(frame.iloc[450:])
    assert proba.shape == (150, 2) and np.allclose(proba.sum(axis=1), 1)
    assert roc_auc_score(y[450:], proba[:, 1]) > 0.85
    blind = TabularNet(architecture="64:relu,32:gelu", seed=3).fit(frame.iloc[:450].drop(columns="shop"), y[:450])
    assert roc_auc_score(y[450:], net.predict_proba(frame.iloc[450:])[:, 1]) > \
        roc_auc_score(y[450:], blind.predict_proba(frame.iloc[450:].drop(columns="shop"))[:, 1])
    odd = frame.iloc[:4].assign(shop=[np.nan, 99.0, 3.0, 0.0], x2=[np.nan, 1.0, np.nan, 2.0])
    assert np.isfinite(net.predict_proba(odd)).all()
    assert list(net.predict(frame.iloc[:5])) == list(net.classes_[net.predict_proba(frame.iloc[:5]).argmax(axis=1)])
    parse_architecture(net.architecture_)  # DARTS' answer is an architecture the network is built from


def test_a_seed_gives_the_same_network_and_pickles_keep_it() -> None:
    frame, _, target = _table(300)
    fits = [TabularNet(task="regression", architecture="32:silu", norm="batch", skip=True, seed=1).fit(frame, target)
            for _ in range(2)]
    first = fits[0].predict(frame)
    np.testing.assert_array_equal(first, fits[1].predict(frame))
    np.testing.assert_array_equal(first, pickle.loads(pickle.dumps(fits[0])).predict(frame))
    assert np.sqrt(np.mean((first - target) ** 2)) < 0.8 * np.std(target)


def test_darts_weights_leave_uniform_and_the_kept_layers_are_their_strongest_operations() -> None:
    frame, y, _ = _table()
    net = TabularNet(categorical=("shop",), architecture="darts", darts_depth=3, darts_width=64, darts_epochs=8,
                     seed=0).fit(frame, y)
    weights = np.asarray(net.darts_weights_)
    assert weights.shape == (3, len(OPERATIONS)) and np.allclose(weights.sum(axis=1), 1)
    assert weights.max() > 1.5 / len(OPERATIONS)  # the architecture weights learned something
    strongest = [OPERATIONS[i] for i in weights.argmax(axis=1)]
    kept = [f"{round(fraction * 64)}:{activation}" for activation, fraction in strongest if activation != "skip"]
    assert net.architecture_ == ",".join(kept)


def test_a_learning_rate_far_too_small_grows_by_its_hypergradient() -> None:
    frame, y, _ = _table(400)
    slow = TabularNet(architecture="32:relu", lr=1e-5, hypergradient=True, max_epochs=30, patience=30, seed=0)
    slow.fit(frame, y)
    assert slow.history_["lr"] > 3e-5  # consecutive gradients agree: every step should have been longer
    assert slow.history_["weight_decay"] != pytest.approx(slow.weight_decay, rel=1e-3)
    fixed = TabularNet(architecture="32:relu", lr=1e-5, max_epochs=30, patience=30, seed=0).fit(frame, y)
    assert fixed.history_["lr"] == 1e-5 and fixed.history_["best_valid_loss"] > slow.history_["best_valid_loss"]


def test_log_adam_steps_the_way_the_hypergradient_points_within_its_bounds() -> None:
    up = LogAdam(1e-3, 0.1, 1e-5, 1e-2)
    values = [up.step(0.01) for _ in range(30)]
    assert values[0] > 1e-3 and values[-1] == pytest.approx(1e-2)  # small but steady: full steps, then the bound
    down = LogAdam(1e-3, 0.1, 1e-5, 1e-2)
    assert down.step(-0.2) < 1e-3
