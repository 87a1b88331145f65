from tabpilot.core.config import FAMILIES
from tabpilot.search.hpo import HyperoptSearch
from tabpilot.search.spaces import defaults_in_order, space_for


def _run(seed: int, n: int = 14) -> list[dict]:
    search = HyperoptSearch(FAMILIES, seed, startup_trials=4)
    seen = []
    for _ in range(n):
        tid, candidate = search.ask()
        search.tell(tid, 0.1 if candidate["family"] == "hist_gb" else 1.0)
        seen.append(candidate)
    return seen


def test_same_seed_same_suggestions() -> None:
    assert _run(7) == _run(7)
    assert _run(7) != _run(8)


def test_suggestions_stay_inside_their_space() -> None:
    for candidate in _run(1, 20):
        space = space_for(candidate["family"], 1000)
        assert set(candidate["params"]) == set(space)
        for name, value in candidate["params"].items():
            dim = space[name]
            if dim[0] == "choice":
                assert value in dim[1]
            else:
                assert dim[1] <= value <= dim[2]


def test_tpe_learns_from_known_points() -> None:
    """Defaults queued with suggest_point teach TPE: after them it favours the family that won."""
    search = HyperoptSearch(FAMILIES, 0, startup_trials=len(FAMILIES))
    for candidate in defaults_in_order(FAMILIES, 1000):
        tid, _ = search.suggest_point(candidate)
        search.tell(tid, 0.1 if candidate["family"] == "xgboost" else 1.0)
    families = []
    for _ in range(10):
        tid, candidate = search.ask()
        families.append(candidate["family"])
        search.tell(tid, 0.1 if candidate["family"] == "xgboost" else 1.0)
    assert families.count("xgboost") >= 5


def test_failed_trials_are_ignored_by_tpe() -> None:
    search = HyperoptSearch(("linear",), 0, startup_trials=1)
    tid, _ = search.ask()
    search.tell(tid, None)
    assert search.trials.trials[0]["result"]["status"] == "fail"
