"""The search loop against a virtual clock: what runs when does not depend on the machine's speed."""
from __future__ import annotations

import types
from typing import Any

import numpy as np
import pytest

from tabpilot.core.config import SearchConfig
from tabpilot.search import loop, records
from tabpilot.search.workers import Outcome

ROWS = 60


class FakePool:
    """Two workers whose jobs take `seconds[family]` of virtual time; `wait` moves the clock on."""

    def __init__(self, clock: types.SimpleNamespace, seconds: dict[str, float], n_workers: int = 2) -> None:
        self.clock, self.seconds, self.n_workers = clock, seconds, n_workers
        self.running: dict[Any, tuple[str, float, float]] = {}
        self.submitted: list[tuple[Any, str, float, float]] = []  # (job, family, at, deadline)

    def idle(self) -> int:
        return self.n_workers - len(self.running)

    def busy(self) -> int:
        return len(self.running)

    def submit(self, job_id: Any, fn: Any, payload: dict[str, Any], deadline: float) -> None:
        family = payload["candidate"]["family"]
        self.running[job_id] = (family, self.clock.now, deadline)
        self.submitted.append((job_id, family, self.clock.now, deadline))

    def wait(self, timeout: float) -> list[Outcome]:
        if not self.running:
            return []
        events = [min(start + self.seconds[family], deadline) for family, start, deadline in self.running.values()]
        self.clock.now = max(self.clock.now, min([*events, self.clock.now + timeout]))
        outcomes = []
        for job_id, (family, start, deadline) in list(self.running.items()):
            elapsed = self.clock.now - start
            if elapsed >= self.seconds[family]:
                loss = 0.1 if family == "linear" else 0.2
                outcomes.append(Outcome(job_id, {"status": "ok", "score": 1 - loss, "loss": loss,
                                                 "oof": np.full((ROWS, 2), 0.5), "fold_scores": [1 - loss],
                                                 "first_fold_loss": loss, "fit_time": elapsed}, None, elapsed))
            elif self.clock.now >= deadline:
                outcomes.append(Outcome(job_id, None, "timeout", elapsed))
            else:
                continue
            del self.running[job_id]
        return outcomes

    def close(self) -> None:
        pass


@pytest.fixture
def clock(monkeypatch: pytest.MonkeyPatch) -> types.SimpleNamespace:
    now = types.SimpleNamespace(now=1_000.0)
    for module in (loop, records):  # records stamp when a trial finished
        monkeypatch.setattr(module, "time", types.SimpleNamespace(time=lambda: now.now))
    return now


def _search(pool: FakePool, clock: types.SimpleNamespace, budget: float, reserve: float = 0.0) -> records.SearchResult:
    cfg = SearchConfig(families=("linear", "xgboost"), portfolio=False, time_budget=budget)
    return loop.run_search(pool, cfg, 0, clock.now + budget, ROWS, lambda _: reserve)


def test_the_first_trial_is_the_cheapest_default_and_no_deadline_stops_it(clock: types.SimpleNamespace) -> None:
    # Every trial takes longer than the whole budget, as on a machine far slower than expected.
    pool = FakePool(clock, {"linear": 30.0, "xgboost": 30.0})
    result = _search(pool, clock, budget=10.0)
    first = result.records[0]
    assert (first.family, first.status) == ("linear", "ok")
    assert [r.status for r in result.records[1:]] == ["timeout"]  # the other worker's trial was stopped
    assert result.ranked() == [first]


def test_a_search_past_its_deadline_still_runs_the_first_trial(clock: types.SimpleNamespace) -> None:
    # The start-up ate the budget (a busy machine): the search window is already closed.
    pool = FakePool(clock, {"linear": 2.0, "xgboost": 2.0})
    result = _search(pool, clock, budget=10.0, reserve=15.0)
    assert [(r.family, r.status) for r in result.records] == [("linear", "ok")]


def test_no_trial_but_the_first_starts_late_or_outlives_the_deadline(clock: types.SimpleNamespace) -> None:
    pool = FakePool(clock, {"linear": 1.0, "xgboost": 3.5})
    start = clock.now
    result = _search(pool, clock, budget=20.0, reserve=5.0)
    deadline = start + 20.0 - 5.0
    later = pool.submitted[1:]
    assert len(result.records) > 4
    assert all(at < deadline - 1.0 and limit == deadline for _, _, at, limit in later)
    assert all(r.finished <= deadline for r in result.records[1:])
    assert any(r.status == "timeout" for r in result.records)  # one that would overrun was stopped
