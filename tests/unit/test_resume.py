"""A search killed midway and resumed from its journal: finished trials are not run again, and with a
trial count the resumed search is the search that was never stopped."""
from __future__ import annotations

import json
import time
import zlib
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from tabpilot.core.config import SearchConfig
from tabpilot.core.errors import UserError
from tabpilot.search import loop, records
from tabpilot.search.journal import Journal, Resumed, fingerprint
from tabpilot.search.workers import Outcome

ROWS = 50
FAMILIES = ("linear", "random_forest", "xgboost")


def _loss(candidate: dict[str, Any]) -> float:
    """A loss fixed by the configuration alone, so runs can be compared trial by trial."""
    text = json.dumps([candidate["family"], candidate["params"], candidate.get("features")], sort_keys=True,
                      default=str)
    return 0.1 + (zlib.crc32(text.encode()) % 1000) / 1000


class CountingPool:
    """Two workers that finish every job at once, with the loss its configuration fixes; it counts what it ran."""

    def __init__(self) -> None:
        self.running: list[tuple[Any, dict[str, Any]]] = []
        self.ran: list[Any] = []

    def idle(self) -> int:
        return 2 - len(self.running)

    def busy(self) -> int:
        return len(self.running)

    def submit(self, job_id: Any, fn: Any, payload: dict[str, Any], deadline: float) -> None:
        self.running.append((job_id, payload["candidate"]))
        self.ran.append(job_id)

    def wait(self, timeout: float) -> list[Outcome]:
        done, self.running = self.running, []
        return [Outcome(job, {"status": "ok", "score": 1 - _loss(c), "loss": _loss(c), "fold_scores": [1 - _loss(c)],
                              "first_fold_loss": _loss(c), "fit_time": 0.01, "oof": np.full((ROWS, 2), _loss(c))},
                        None, 0.01) for job, c in done]

    def close(self) -> None:
        pass


def _run(journal: Journal, resumed: Resumed | None, strategy: str = "tpe", stop_after: int | None = None,
         trials: int = 14) -> tuple[records.SearchResult, CountingPool]:
    cfg = SearchConfig(families=FAMILIES, portfolio=False, max_trials=trials, strategy=strategy, startup_trials=4)
    pool = CountingPool()
    state: dict[str, records.SearchResult] = {}

    def keep(record: records.TrialRecord, result: records.SearchResult) -> None:
        state["result"] = result

    stop = None if stop_after is None else (lambda: len(state.get("result", records.SearchResult([], {})).records)
                                            >= stop_after)
    result = loop.run_search(pool, cfg, 7, time.time() + 3600, ROWS, on_trial=keep, stop=stop,
                             journal=(journal, resumed or Resumed()))
    return result, pool


def _trials(result: records.SearchResult) -> list[tuple[int, str, str, float | None]]:
    return [(r.trial, r.family, json.dumps(r.params, sort_keys=True, default=str), r.loss) for r in result.records]


@pytest.mark.parametrize("strategy", ["tpe", "evolution", "gp"])
def test_a_resumed_search_runs_only_the_unfinished_trials_and_ends_as_the_uninterrupted_one(
        tmp_path: Path, strategy: str) -> None:
    whole = Journal(tmp_path / "whole")
    whole.start("a")
    uninterrupted, _ = _run(whole, None, strategy)
    stopped = Journal(tmp_path / "stopped")
    stopped.start("a")
    first, _ = _run(stopped, None, strategy, stop_after=5)
    finished = {r.trial for r in first.records}
    assert 5 <= len(finished) < 14
    entries = Journal(tmp_path / "stopped").resume("a", "here")
    assert {t for t, e in entries.trials.items() if e.outcome is not None} == finished
    resumed, pool = _run(stopped, entries, strategy)
    assert _trials(resumed) == _trials(uninterrupted)
    assert not finished & set(pool.ran) and len(pool.ran) == 14 - len(finished)
    assert sorted(resumed.oof) == sorted(uninterrupted.oof)
    # A second resume of the finished search runs nothing.
    again, pool = _run(stopped, Journal(tmp_path / "stopped").resume("a", "here"), strategy)
    assert _trials(again) == _trials(uninterrupted) and pool.ran == []


def test_on_a_clock_the_finished_trials_keep_their_ids_and_the_search_goes_on(tmp_path: Path) -> None:
    journal = Journal(tmp_path / "j")
    journal.start("a")
    cfg = SearchConfig(families=FAMILIES, portfolio=False, time_budget=3600)
    pool = CountingPool()
    seen: list[int] = []
    first = loop.run_search(pool, cfg, 7, time.time() + 3600, ROWS, on_trial=lambda r, _: seen.append(r.trial),
                            stop=lambda: len(seen) >= 6, journal=(journal, Resumed()))
    before = {r.trial: (r.family, r.params, r.loss) for r in first.records}
    entries = journal.resume("a", "here")
    pool = CountingPool()
    count = 0

    def stop() -> bool:
        return count >= 10

    def more(record: records.TrialRecord, _: Any) -> None:
        nonlocal count
        count += 1

    resumed = loop.run_search(pool, cfg, 7, time.time() + 3600, ROWS, on_trial=more, stop=stop,
                              journal=(journal, entries))
    after = {r.trial: (r.family, r.params, r.loss) for r in resumed.records}
    assert all(after[t] == before[t] for t in before)
    assert not set(before) & set(pool.ran) and len(after) > len(before)


def test_a_journal_of_other_settings_or_none_is_one_clear_error(tmp_path: Path) -> None:
    settings = {"seed": 1, "search": {"time_budget": 60, "max_trials": None, "families": ["linear"]}}
    mark = fingerprint(settings, "data-1")
    # How long the search goes on may change; what it searches may not.
    assert fingerprint({**settings, "search": {**settings["search"], "time_budget": 300}}, "data-1") == mark
    assert fingerprint({**settings, "seed": 2}, "data-1") != mark
    assert fingerprint(settings, "data-2") != mark
    journal = Journal(tmp_path / "j")
    with pytest.raises(UserError, match="no search to resume in runs/x"):
        journal.resume(mark, "runs/x")
    journal.start(mark)
    with pytest.raises(UserError, match="other data or settings"):
        journal.resume(fingerprint(settings, "data-2"), "runs/x")
    # A trial being written when the run was killed is left out; the others are read.
    journal.sent(0, {"family": "linear", "params": {}})
    (journal.folder / "trial_1.pkl.part").write_bytes(b"\x80half a pickle")
    assert list(journal.resume(mark, "runs/x").trials) == [0]
