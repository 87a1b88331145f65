from pathlib import Path

import numpy as np
import pytest

from tabpilot.core.artifacts import RunPaths
from tabpilot.metalearn import zeroshot
from tabpilot.search import metafeatures, portfolio
from tabpilot.search.spaces import DEFAULTS, fits_space
from tests.unit.test_stages import _config, _prepare


def test_losses_are_rescaled_per_table_from_best_to_median() -> None:
    losses = np.array([[0.2, 0.4, 0.6, np.nan],  # best 0.2, median 0.4
                       [5.0, 5.0, 5.0, 5.0]])  # no spread: every candidate is as good as the best
    np.testing.assert_allclose(zeroshot.rescaled(losses), [[0.0, 1.0, 1.0, 1.0], [0.0, 0.0, 0.0, 0.0]])
    np.testing.assert_allclose(zeroshot.rescaled(np.array([[1.0, 1.5, 2.0, 9.0]])), [[0.0, 0.5 / 0.75, 1.0, 1.0]])


def test_the_greedy_adds_what_the_start_misses_and_stops_when_nothing_helps() -> None:
    errors = np.array([
        # defaults  a    b    c
        [0.0,      0.9, 0.0, 0.5],  # table 1: the default is already best
        [0.8,      0.0, 0.7, 0.05],  # table 2
        [0.8,      0.1, 0.9, 0.0],  # table 3
    ])
    # From the default alone (mean 1.6 / 3), c lowers the mean to 0.05 / 3 and a to 0.1 / 3: c first.
    # Then a closes table 2's last 0.05, and nothing is left to gain.
    assert zeroshot.greedy(errors, [0], 5) == [3, 1]
    assert zeroshot.greedy(errors, [0], 1) == [3]
    assert zeroshot.greedy(np.zeros((2, 3)), [0], 5) == []


def test_held_out_a_table_cannot_use_the_winners_only_its_own_search_found() -> None:
    losses = np.array([
        # default  a: found by tables 0 and 1   c: found by table 2
        [1.0,      0.0,                         1.0],
        [1.0,      0.0,                         1.0],
        [1.0,      1.0,                         0.0],
    ])
    origins = [set(), {0, 1}, {2}]
    # Without table 0, a is still table 1's find, and the others choose it: table 0 loses nothing.
    # Without table 2, c does not exist; a is chosen, which is table 2's worst.
    np.testing.assert_allclose(zeroshot.held_out(losses, origins), [0.0, 0.0, 1.0])
    assert zeroshot.greedy(zeroshot.rescaled(losses), [], 6) == [1, 2]  # in sample: no error at all


def test_every_candidate_is_cross_validated_on_a_table(tmp_path: Path) -> None:
    cfg = _config(tmp_path, families=["linear", "hist_gb"])
    paths = RunPaths(tmp_path / "run")
    _prepare(cfg, paths)
    candidates = [{"family": "linear", "params": {"C": 1.0, "class_weight": None}},
                  {"family": "linear", "params": {"C": 1e-4, "class_weight": None}},
                  {"family": "xgboost", "params": DEFAULTS["xgboost"]}]  # not enabled here
    losses = zeroshot.cross_evaluate(cfg, paths, candidates)
    assert np.isfinite(losses[:2]).all() and np.isnan(losses[2])
    assert -1.0 <= losses[0] < losses[1] < 0  # negated AUC; a near-zero C leaves the model half blind


def test_the_shipped_zero_shot_portfolio_goes_first_and_fits_the_space() -> None:
    for task in ("binary", "regression"):
        first = portfolio.zero_shot(task)
        assert first and all(fits_space(c) for c in first)
        families = tuple(DEFAULTS)
        assert portfolio.warm_start(dict.fromkeys(metafeatures.NAMES, 0.0), task, families)[: len(first)] == first
    document = portfolio.load_document()
    for kind in ("classification", "regression"):
        chosen = document["zero_shot"][kind]
        assert chosen["error"] <= chosen["held_out_error"] < chosen["defaults_error"]
        losses = np.array(chosen["losses"], dtype=float)
        assert losses.shape == (chosen["tables"], chosen["candidates"]) == (len(chosen["datasets"]), losses.shape[1])


@pytest.mark.parametrize("given", [[], [{"family": "xgboost", "params": {"rank": 0}}]])
def test_warm_start_puts_the_given_first_configurations_before_the_nearest(given: list) -> None:
    from tests.unit.test_portfolio import _entry

    entries = [_entry("near", "binary", 2.0, "knn")]
    meta = dict.fromkeys(metafeatures.NAMES, 0.0) | {"log_rows": 2.0}
    chosen = portfolio.warm_start(meta, "binary", ("knn", "linear", "xgboost"), entries=entries, first=given)
    assert chosen == [*given, *entries[0]["configs"]]


def test_stored_losses_without_their_candidates_are_refused(tmp_path: Path) -> None:
    from tabpilot.core.errors import UserError

    cfg = _config(tmp_path)
    stored = {"datasets": [cfg.data.path], "losses": [[0.1, 0.2]]}
    with pytest.raises(UserError, match=r"do not name their candidates.*run without --reuse-losses"):
        zeroshot.build([(cfg, RunPaths(tmp_path / "run"), [])], stored=stored)


def test_a_rebuild_cross_validates_only_the_candidates_its_stored_losses_lack(tmp_path: Path) -> None:
    cfg = _config(tmp_path, families=["linear", "hist_gb"])
    paths = RunPaths(tmp_path / "run")
    _prepare(cfg, paths)
    winner = {"family": "linear", "params": {"C": 0.01, "class_weight": None}}
    first = zeroshot.build([(cfg, paths, [winner])])
    columns = [c["family"] for c in first["candidate_configs"]]
    linear, hist_gb = columns.index("linear"), columns.index("hist_gb")
    assert first["candidate_configs"][-1] == winner and np.isfinite(first["losses"][0][linear])
    # A known cell is taken as it is (a sentinel no search gives); a candidate it lacks is cross-validated.
    stored = {**first, "candidate_configs": first["candidate_configs"][:-1],
              "losses": [[-7.0 if j == linear else v for j, v in enumerate(first["losses"][0][:-1])]]}
    again = zeroshot.build([(cfg, paths, [winner])], stored=stored)
    assert again["losses"][0][linear] == -7.0 and again["losses"][0][hist_gb] == first["losses"][0][hist_gb]
    assert again["losses"][0][-1] == pytest.approx(first["losses"][0][-1])
    assert again["configs"][0] == first["candidate_configs"][linear]  # the sentinel is the best loss
