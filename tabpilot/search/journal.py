"""The search's journal on disk: every trial as it is sent (its configuration) and as it comes back
(its whole outcome, out-of-fold predictions included), so a run killed mid-search (`kill -9`, a lost
machine) resumes without running a finished trial again (`tabpilot train --resume`).

One small pickle per trial, written to a `.part` file and renamed: a kill leaves either the old
file or the new one, never half of one. A trial's later jobs (a late repeat, a promotion to more
rows) are journaled as they finish, each under its (kind, trial, number).
"""
from __future__ import annotations

import hashlib
import json
import os
import pickle
import shutil
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from tabpilot.core.errors import UserError
from tabpilot.search.workers import Outcome

# Settings a resumed run may change: they decide how long the search goes on, not what a trial is.
FREE_SETTINGS = (("search", "time_budget"), ("search", "max_trials"), ("search", "resume"),
                 ("search", "n_workers"))


@dataclass
class Entry:
    candidate: dict[str, Any]
    outcome: Outcome | None = None  # None: it was running when the run stopped


Extra = tuple[str, int, int]  # a later job of a trial: (kind, trial, number), as ("promote", 3, 2)


@dataclass
class Resumed:
    """What a resumed search finds journaled: its trials by id, and the later jobs that finished."""

    trials: dict[int, Entry] = field(default_factory=dict)
    extras: dict[Extra, Outcome] = field(default_factory=dict)


def fingerprint(settings: dict[str, Any], data: str) -> str:
    """What a journal's trials depend on: the run's settings (but FREE_SETTINGS) and its data (a fingerprint)."""
    kept = json.loads(json.dumps(settings, default=str))
    for section, key in FREE_SETTINGS:
        kept.get(section, {}).pop(key, None)
    return hashlib.sha256(json.dumps([kept, data], sort_keys=True).encode()).hexdigest()[:16]


class Journal:
    def __init__(self, folder: Path) -> None:
        self.folder = folder

    def start(self, print_: str) -> None:
        """A new search: an earlier one's entries go."""
        shutil.rmtree(self.folder, ignore_errors=True)
        self.folder.mkdir(parents=True)
        self._write("meta.pkl", {"fingerprint": print_})

    def resume(self, print_: str, where: str) -> Resumed:
        """The entries of the search this one continues, by trial id; none, or a journal of other
        settings or data (what was searched would not be this search), is a user error naming `where`."""
        self.check(where)
        if self._read(self.folder / "meta.pkl")["fingerprint"] != print_:
            raise UserError(f"--resume: the search in {where} ran on other data or settings: "
                            "resume with the same data and params, or run without --resume")
        found = Resumed()
        for path in self.folder.glob("trial_*.pkl"):
            trial, *extra = path.stem.removeprefix("trial_").split(".")
            if extra:
                kind, number = extra[0].rsplit("_", 1)
                found.extras[(kind, int(trial), int(number))] = self._read(path)
            else:
                found.trials[int(trial)] = Entry(**self._read(path))
        return found

    def check(self, where: str) -> None:
        if not (self.folder / "meta.pkl").exists():
            raise UserError(f"--resume: no search to resume in {where}: run the same command without --resume")

    def sent(self, trial: int, candidate: dict[str, Any]) -> None:
        self._write(f"trial_{trial}.pkl", {"candidate": candidate, "outcome": None})

    def finished(self, trial: int, candidate: dict[str, Any], outcome: Outcome) -> None:
        self._write(f"trial_{trial}.pkl", {"candidate": candidate, "outcome": outcome})

    def extra(self, key: Extra, outcome: Outcome) -> None:
        kind, trial, number = key
        self._write(f"trial_{trial}.{kind}_{number}.pkl", outcome)

    def _write(self, name: str, value: Any) -> None:
        part = self.folder / f"{name}.part"
        with part.open("wb") as sink:
            pickle.dump(value, sink, protocol=pickle.HIGHEST_PROTOCOL)
        os.replace(part, self.folder / name)

    @staticmethod
    def _read(path: Path) -> Any:
        with path.open("rb") as source:
            return pickle.load(source)
