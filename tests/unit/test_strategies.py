"""The search strategies behind the one ask/tell interface: each proposes configurations inside the
space, is reproducible for a seed, learns from what it is told, and builds what its name says."""
from __future__ import annotations

import math
from typing import Any

import numpy as np
import pytest

from tabpilot.search.encoding import Encoder, to_unit
from tabpilot.search.evolution import POPULATION, EvolutionSearch
from tabpilot.search.grid import GridSearch
from tabpilot.search.spaces import space_for
from tabpilot.search.strategy import STRATEGIES, make_strategy

FAMILIES = ("linear", "knn", "hist_gb")
FEATURES = {"keep": ("choice", [1.0, 0.75, 0.5, 0.3]), "select": ("choice", ["mi", "model"])}
ROWS = 500


def loss(config: dict[str, Any]) -> float:
    """A smooth loss with its minimum in the linear family at C = 10**0.7 (unit 0.74); other
    families are worse by 0.2 at best."""
    if config["family"] != "linear":
        return 0.2 + 0.1 * to_unit(space_for("knn", ROWS)["n_neighbors"], config["params"].get("n_neighbors", 10))
    return (to_unit(("loguniform", 1e-3, 1e2), config["params"]["C"]) - 0.74) ** 2


def _inside(config: dict[str, Any]) -> bool:
    space = space_for(config["family"], ROWS)
    if set(config["params"]) != set(space):
        return False
    for name, dim in space.items():
        value = config["params"][name]
        if dim[0] == "choice":
            ok = value in dim[1]
        else:
            ok = dim[1] - 1e-9 <= value <= dim[2] + 1e-9 and (dim[0] not in ("int", "logint") or isinstance(value, int))
        if not ok:
            return False
    return set(config.get("features", {})) <= {"construct", "keep", "select"}


def _run(name: str, trials: int, seed: int = 0) -> list[tuple[dict[str, Any], float]]:
    strategy = make_strategy(name, FAMILIES, seed, startup_trials=5, rows=ROWS, features=FEATURES)
    history = []
    tid, config = strategy.suggest_point({"family": "hist_gb", "params": {}} | {"params": _hgb_default()})
    strategy.tell(tid, loss(config))
    history.append((config, loss(config)))
    for _ in range(trials - 1):
        tid, config = strategy.ask()
        strategy.tell(tid, loss(config))
        history.append((config, loss(config)))
    return history


def _hgb_default() -> dict[str, Any]:
    from tabpilot.search.spaces import DEFAULTS

    return dict(DEFAULTS["hist_gb"])


@pytest.mark.parametrize("name", STRATEGIES)
def test_every_strategy_proposes_inside_the_space_and_repeats_itself_for_a_seed(name: str) -> None:
    first, again = _run(name, 25), _run(name, 25)
    assert [c for c, _ in first] == [c for c, _ in again]
    assert all(_inside(c) for c, _ in first), [c for c, _ in first if not _inside(c)][:1]
    assert {c["family"] for c, _ in first} <= set(FAMILIES)


@pytest.mark.parametrize("name", ["tpe", "anneal", "gp", "evolution"])
def test_the_learning_strategies_close_in_on_the_minimum(name: str) -> None:
    # Each learns from what it is told: over 60 trials its best is near the minimum, and its second
    # half is better on average than random search's (the same trial count, the same seed).
    history = _run(name, 60)
    random = _run("random", 60)
    assert min(lost for _, lost in history) < 0.01
    assert np.mean([lost for _, lost in history[30:]]) < np.mean([lost for _, lost in random[30:]])


def test_the_grid_starts_in_the_middle_takes_turns_and_covers_every_level() -> None:
    grid = GridSearch(("linear", "knn"), 0, rows=ROWS)
    asked = [grid.ask()[1] for _ in range(6)]
    assert [c["family"] for c in asked[:4]] == ["linear", "knn", "linear", "knn"]
    assert asked[0]["params"]["C"] == pytest.approx(10 ** -0.5)  # the middle of 1e-3..1e2 on the log scale
    assert asked[0]["params"]["class_weight"] is None  # the first of two choices
    sizes = {f: grid.size(f) for f in ("linear", "knn")}
    assert sizes == {"linear": 3 * 2, "knn": 3 * 2 * 2}
    seen = asked + [grid.ask()[1] for _ in range(sum(sizes.values()) - 6)]
    unique = {(c["family"], tuple(sorted(c["params"].items()))) for c in seen}
    assert len(unique) == sum(sizes.values())  # every grid point once, none twice
    assert sorted({c["params"]["C"] for c in seen if c["family"] == "linear"}) == pytest.approx([1e-3, 10 ** -0.5, 1e2])


def test_the_grid_skips_a_point_already_run() -> None:
    grid = GridSearch(("linear",), 0, rows=ROWS)
    tid, middle = grid.suggest_point({"family": "linear", "params": {"C": 10 ** -0.5, "class_weight": None}})
    assert all(grid.ask()[1] != middle for _ in range(5))


def test_evolution_mutates_one_gene_of_a_tournament_winner() -> None:
    evolution = EvolutionSearch(FAMILIES, 0, rows=ROWS, features=FEATURES)
    encoder = Encoder(FAMILIES, ROWS, FEATURES)
    for _ in range(POPULATION):  # a full population, then children
        tid, config = evolution.ask()
        evolution.tell(tid, loss(config))
    for _ in range(40):
        parent = encoder.sample(evolution.rng)
        child = evolution.mutate(parent)
        if child["family"] != parent["family"]:
            # a new family keeps the parent's feature settings
            assert child.get("features") == parent.get("features")
            continue
        before, after = encoder.encode(parent), encoder.encode(child)
        changed = [name for (name, dim), a, b in zip(encoder.dims(parent["family"]), before, after, strict=True)
                   if not math.isclose(a, b)]
        assert len(changed) <= 1, changed  # (a step can round back to the same integer)


def test_evolution_keeps_only_the_latest_population() -> None:
    evolution = EvolutionSearch(("linear",), 0, rows=ROWS)
    for _ in range(POPULATION + 10):
        tid, config = evolution.ask()
        evolution.tell(tid, 1.0)
    # the best ever told, then aged out: the parent is drawn from the last POPULATION only
    tid, best = evolution.ask()
    evolution.tell(tid, 0.0)
    for _ in range(POPULATION):
        tid, config = evolution.ask()
        evolution.tell(tid, 1.0)
    assert all(c != best or lost == 0.0 for c, lost in evolution.told[-POPULATION:])
    assert (best, 0.0) not in evolution.told[-POPULATION:]


def test_an_unknown_strategy_is_refused_by_name() -> None:
    with pytest.raises(ValueError, match="unknown search strategy 'hill'"):
        make_strategy("hill", FAMILIES, 0)
