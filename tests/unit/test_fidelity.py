"""Multi-fidelity over rows on large tables (successive halving, issue 22): configurations start on few
rows, the best of each rung move up, the last rung is all rows; each keeps its latest rung's model."""
from __future__ import annotations

import json
import time
import zlib
from pathlib import Path
from typing import Any

import numpy as np

from tabpilot.core.config import SearchConfig
from tabpilot.search import fidelity, loop
from tabpilot.search.workers import Outcome

ROWS = 1_000_000  # training rows: a holdout of 50,000, rungs of 25k, 100k, 400k and 950k rows
VALID = 50


def test_rungs_grow_by_eta_to_all_rows_and_small_tables_have_one() -> None:
    assert fidelity.rungs(900_000) == [25_000, 100_000, 400_000, 900_000]
    assert fidelity.rungs(150_000) == [25_000, 150_000]  # a last step under 2x is merged into all rows
    assert fidelity.rungs(80_000) == [80_000]
    assert fidelity.promotable({1: 0.3, 2: 0.1, 3: 0.2, 4: 0.5, 5: 0.4, 6: 0.6, 7: 0.7, 8: 0.8}, {2}) == [3]
    assert fidelity.promotable({1: 0.3, 2: 0.1, 3: 0.2}, set()) == []  # the first rung: a quarter of 3 is none
    assert fidelity.promotable({1: 0.3, 2: 0.1, 3: 0.2}, set(), first=False) == [2]  # survivors: rounded up
    assert fidelity.promotable({1: 0.3}, set(), first=False) == []


class RowsPool:
    """Two workers that finish each job at once: the loss falls with the rows it was fitted on."""

    def __init__(self) -> None:
        self.running: list[tuple[Any, dict[str, Any]]] = []
        self.jobs: list[tuple[Any, int | None, str | None]] = []  # (job, rows, where its models go)

    def idle(self) -> int:
        return 2 - len(self.running)

    def busy(self) -> int:
        return len(self.running)

    def submit(self, job_id: Any, fn: Any, payload: dict[str, Any], deadline: float) -> None:
        self.running.append((job_id, payload))
        self.jobs.append((job_id, payload.get("rows"), payload.get("keep_models")))

    def wait(self, timeout: float) -> list[Outcome]:
        done, self.running = self.running, []
        return [Outcome(job, self._result(payload), None, 0.01) for job, payload in done]

    @staticmethod
    def _result(payload: dict[str, Any]) -> dict[str, Any]:
        c = payload["candidate"]
        text = json.dumps([c["family"], c["params"]], sort_keys=True, default=str)
        rows = payload.get("rows") or ROWS - VALID * 1000
        loss = 0.2 + (zlib.crc32(text.encode()) % 1000) / 2000 + 2_000 / rows
        return {"status": "ok", "score": 1 - loss, "loss": loss, "fold_scores": [1 - loss], "first_fold_loss": loss,
                "fit_time": rows / 25_000, "oof": np.full((VALID, 2), loss), "rows": rows,
                "models_kept": bool(payload.get("keep_models"))}

    def close(self) -> None:
        pass


def test_trials_start_on_few_rows_and_the_best_climb_to_all_rows_where_their_models_are_kept(tmp_path: Path) -> None:
    cfg = SearchConfig(families=("linear", "random_forest", "xgboost"), portfolio=False, max_trials=32,
                       startup_trials=4)
    pool = RowsPool()
    result = loop.run_search(pool, cfg, 0, time.time() + 3600, ROWS, folds=(1, 1), models_dir=tmp_path)
    new = [(rows, keep) for job, rows, keep in pool.jobs if not isinstance(job, tuple)]
    assert len(new) == 32 and all(rows == 25_000 and keep for rows, keep in new)  # each rung's model is kept
    ups = [(job[2], rows, keep) for job, rows, keep in pool.jobs if isinstance(job, tuple)]
    assert {rung for rung, _, _ in ups} == {1, 2, 3}
    assert all(rows == fidelity.rungs(950_000)[rung] and keep for rung, rows, keep in ups if rung < 3)
    assert all(rows is None and keep for rung, rows, keep in ups if rung == 3)  # all rows
    # Each rung takes the best quarter of the one below as they finish (asynchronously: a trial that
    # was among the best when it finished moves up even if later ones pass it), so fewer each rung up.
    n1, n2, n3 = (sum(r == k for r, _, _ in ups) for k in (1, 2, 3))
    assert 32 // 4 <= n1 < 32 // 2 and -(-n1 // 4) <= n2 < n1 and 1 <= n3 < n2
    best = result.ranked()[0]
    assert best.rung == 3 and best.rows == ROWS - VALID * 1000 and best.models_kept


def test_on_a_clock_a_trial_moves_up_only_if_its_fit_there_ends_in_time(tmp_path: Path) -> None:
    cfg = SearchConfig(families=("linear", "random_forest", "xgboost"), portfolio=False, time_budget=3600)
    pool = RowsPool()
    count = 0

    def counted(*_: Any) -> None:
        nonlocal count
        count += 1

    # 40 s left: a first-rung fit takes 1 s here, so 100k rows (5.3 s) fits, 400k (28 s) only early.
    loop.run_search(pool, cfg, 0, time.time() + 40, ROWS, folds=(1, 1), on_trial=counted, stop=lambda: count >= 40)
    rungs = [job[2] for job, _, _ in pool.jobs if isinstance(job, tuple)]
    assert 1 in rungs and 3 not in rungs  # all rows (950k: 2.4 x 400k's) never fits in 40 s


class OrderPool(RowsPool):
    """RowsPool that keeps each new trial's configuration, in the order sent."""

    def __init__(self) -> None:
        super().__init__()
        self.sent: list[tuple[str, Any]] = []

    def submit(self, job_id: Any, fn: Any, payload: dict[str, Any], deadline: float) -> None:
        if not isinstance(job_id, tuple):
            c = payload["candidate"]
            self.sent.append((c["family"], c["params"].get("max_depth")))
        super().submit(job_id, fn, payload, deadline)


def _first_trials(rows: int, folds: tuple[int, int]) -> list[tuple[str, Any]]:
    from tabpilot.search.spaces import DEFAULTS

    cfg = SearchConfig(families=("linear", "random_forest", "xgboost"), portfolio=False, max_trials=6,
                       startup_trials=4)
    stored = [{"family": "xgboost", "params": {**DEFAULTS["xgboost"], "max_depth": 3}},
              {"family": "random_forest", "params": {**DEFAULTS["random_forest"], "max_depth": 12}}]
    given = [{"family": "xgboost", "params": {**DEFAULTS["xgboost"], "max_depth": 9}}]
    pool = OrderPool()
    loop.run_search(pool, cfg, 0, time.time() + 3600, rows, folds=folds, warm_start=stored, given=given)
    return pool.sent


def test_on_rungs_of_rows_each_family_default_goes_before_the_portfolio() -> None:
    """The portfolio comes from tables of thousands of rows; on rungs each family's default screens it
    first. A retrain's given configurations go first on any table, after the cheapest default."""
    defaults = [("xgboost", 6), ("random_forest", None)]  # cheapest first
    on_rungs = _first_trials(ROWS, (1, 1))
    assert on_rungs == [("linear", None), ("xgboost", 9), *defaults, ("xgboost", 3), ("random_forest", 12)]
    small = _first_trials(20_000, (5, 1))  # one rung: the portfolio before the other defaults, as always
    assert small == [("linear", None), ("xgboost", 9), ("xgboost", 3), ("random_forest", 12), *defaults]
